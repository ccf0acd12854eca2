//! Embeds the git revision the binary was built from as `STREAMPROBE_REVISION` (the `revision`
//! label of `streamprobe_build_info`): `git rev-parse --short=12 HEAD` in a git checkout,
//! `unknown` without one (a crates.io or tarball build) or without git. A packager may set
//! `STREAMPROBE_REVISION` in the build environment instead.
//!
//! Does not: fail the build (a missing git is not an error) or add dependencies.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=STREAMPROBE_REVISION");
    if let Ok(given) = std::env::var("STREAMPROBE_REVISION") {
        println!("cargo:rustc-env=STREAMPROBE_REVISION={given}");
        return;
    }
    let revision = git_revision().unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=STREAMPROBE_REVISION={revision}");
}

/// The short commit of HEAD, and the files to watch so that a commit or checkout rebuilds:
/// `HEAD` itself, the branch ref it points to (in the common git dir, which differs from the
/// git dir in a worktree) and `packed-refs` (where the ref lives after `git gc`).
fn git_revision() -> Option<String> {
    let root = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    // `.git` is a directory in a clone and a file in a worktree; absent in a package.
    if !Path::new(&root).join(".git").exists() {
        return None;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    };
    let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.extend(git(&["rev-parse", "--git-path", &branch]));
    }
    watch.extend(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watch {
        let path = Path::new(&root).join(path);
        // A path that does not exist would make cargo rerun this script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}
