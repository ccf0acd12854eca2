//! The shipped Grafana dashboard loads both ways Grafana offers: UI import (which substitutes
//! `__inputs` placeholders such as `${DS_PROMETHEUS}`) and file provisioning (which loads the
//! JSON as it is and substitutes nothing, grafana/grafana#10786). So nothing may depend on an
//! import-time substitution: every query names its data source through the `datasource`
//! variable, whose starting value resolves without one.

use serde_json::Value;

fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/grafana/dashboards/streamprobe.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every `datasource` object anywhere in `v`, with where it was found.
fn datasources<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{at}.{k}");
                if k == "datasource" {
                    out.push((here.clone(), child));
                }
                datasources(child, here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                datasources(child, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_dashboard_loads_by_import_and_by_file_provisioning() {
    let d = dashboard();
    // UI import: the wizard asks for a Prometheus data source and checks what is required.
    let inputs = d["__inputs"].as_array().unwrap();
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let requires = d["__requires"].as_array().unwrap();
    for (kind, id) in [("grafana", "grafana"), ("datasource", "prometheus")] {
        assert!(
            requires.iter().any(|r| r["type"] == kind && r["id"] == id),
            "__requires lacks {kind} {id}"
        );
    }

    // File provisioning: no placeholder outside `__inputs` waits for a substitution.
    let mut body = d.clone();
    body.as_object_mut().unwrap().remove("__inputs");
    let text = body.to_string();
    assert!(
        !text.contains("${DS_"),
        "provisioning would leave a ${{DS_…}} placeholder unresolved"
    );

    // The data source variable starts at a value Grafana resolves by itself.
    let variables = d["templating"]["list"].as_array().unwrap();
    let ds = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a `datasource` variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let current = &ds["current"]["value"];
    assert!(
        current.is_null() || *current == "default",
        "starts at {current}, which provisioning cannot resolve"
    );

    // Every query goes through that variable (or is Grafana's own annotation source).
    let mut found = Vec::new();
    datasources(&d, String::new(), &mut found);
    assert!(found.len() > 20, "{}", found.len());
    for (at, ds) in found {
        let builtin = ds["type"] == "grafana" && ds["uid"] == "-- Grafana --";
        assert!(
            builtin || (ds["type"] == "prometheus" && ds["uid"] == "${datasource}"),
            "{at}: {ds}"
        );
    }
}
