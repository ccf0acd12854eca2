//! Raw serde mirror of the config file (`deny_unknown_fields`); the only serde_yaml user.
