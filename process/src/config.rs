//! Reading a bmon process's configuration, written once: serde defaults, then the TOML file,
//! then `BMON_<SECTION>__<KEY>` environment variables (`BMON_CLICKHOUSE__PASSWORD`), with one
//! error for each way a configuration can be unusable.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A configuration that cannot be used, named after the mistake.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist.
    #[error("config file {path} does not exist")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("cannot parse the configuration: {0}")]
    Parse(#[source] Box<figment::Error>),
    /// Values parse but do not make sense together; every problem is listed.
    #[error("invalid configuration: {}", problems.join("; "))]
    Invalid {
        /// One line per problem.
        problems: Vec<String>,
    },
}

/// `path` as the TOML layer of a configuration, or [`ConfigError::Missing`].
pub fn file(path: &Path) -> Result<Figment, ConfigError> {
    if !path.is_file() {
        return Err(ConfigError::Missing {
            path: path.to_path_buf(),
        });
    }
    Ok(Figment::new().merge(Toml::file(path)))
}

/// `BMON_<SECTION>__<KEY>` variables for `sections` only: other `BMON_` variables (the CLI's
/// `BMON_CLICKHOUSE_URL`, the tests' `BMON_TEST_...`) belong to other programs.
pub fn env(sections: &'static [&'static str]) -> Env {
    // figment hands the filter the key after `split` and before lowercasing:
    // `BMON_CLICKHOUSE__PASSWORD` arrives as `CLICKHOUSE.PASSWORD`.
    Env::prefixed("BMON_").split("__").filter(move |key| {
        let mut parts = key.as_str().splitn(2, '.');
        match (parts.next(), parts.next()) {
            (Some(section), Some(rest)) if !rest.is_empty() => {
                sections.iter().any(|s| section.eq_ignore_ascii_case(s))
            }
            _ => false,
        }
    })
}

/// `T`'s defaults, then `figment`, extracted: a wrong key or type is [`ConfigError::Parse`].
pub fn extract<T: Default + Serialize + DeserializeOwned>(
    figment: Figment,
) -> Result<T, ConfigError> {
    Figment::from(Serialized::defaults(T::default()))
        .merge(figment)
        .extract()
        .map_err(|e| ConfigError::Parse(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        web: Section,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Section {
        port: u16,
    }

    impl Default for Section {
        fn default() -> Self {
            Section { port: 80 }
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
    fn defaults_then_the_file_then_our_environment_variables() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bmon.toml", "[web]\nport = 81\n")?;
            let from_file: Sample = extract(file(Path::new("bmon.toml")).unwrap()).unwrap();
            assert_eq!(from_file.web.port, 81);
            jail.set_env("BMON_WEB__PORT", "82");
            jail.set_env("BMON_OTHER__PORT", "x");
            jail.set_env("BMON_WEB_URL", "x");
            let layered = file(Path::new("bmon.toml")).unwrap().merge(env(&["web"]));
            let with_env: Sample = extract(layered).unwrap();
            assert_eq!(with_env.web.port, 82);
            let defaults: Sample = extract(Figment::new()).unwrap();
            assert_eq!(defaults.web.port, 80);
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_and_a_wrong_key_are_named() {
        let missing = file(Path::new("/nonexistent/bmon.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Missing { .. }));
        assert!(missing.to_string().contains("/nonexistent/bmon.toml"));
        let wrong =
            extract::<Sample>(Figment::new().merge(Toml::string("[web]\npot = 1\n"))).unwrap_err();
        assert!(matches!(wrong, ConfigError::Parse(_)));
        assert!(wrong.to_string().contains("pot"), "{wrong}");
    }
}
