//! Settings: command-line flags, then environment variables, then a profile
//! of the optional TOML configuration file.
//!
//! ```toml
//! [profile.default]
//! api_key = "sch_dev_..."
//!
//! [profile.local]
//! api_key = "sch_dev_mock"
//! api_url = "http://127.0.0.1:8787"
//! capture_url = "http://127.0.0.1:8788"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// One setting the command line knows: its name (in the configuration
/// file), its environment variable and whether it is a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The name in the configuration file, e.g. `api_key`.
    pub name: &'static str,
    /// The environment variable, e.g. `SCHEMATIC_API_KEY`.
    pub env: &'static str,
    /// Secrets are never printed.
    pub secret: bool,
    /// What it is, for `config show` and the docs.
    pub about: &'static str,
}

/// Every setting.
pub const KEYS: &[Key] = &[
    Key {
        name: "api_key",
        env: "SCHEMATIC_API_KEY",
        secret: true,
        about: "Schematic API key",
    },
    Key {
        name: "api_url",
        env: "SCHEMATIC_API_URL",
        secret: false,
        about: "Schematic REST base URL",
    },
    Key {
        name: "capture_url",
        env: "SCHEMATIC_CAPTURE_URL",
        secret: false,
        about: "Schematic event-capture base URL",
    },
    Key {
        name: "datastream_url",
        env: "SCHEMATIC_DATASTREAM_URL",
        secret: false,
        about: "DataStream WebSocket URL (default: derived from the REST URL)",
    },
    Key {
        name: "webhook_secret",
        env: "SCHEMATIC_WEBHOOK_SECRET",
        secret: true,
        about: "default secret of the webhook commands",
    },
    Key {
        name: "esauti_api_url",
        env: "ESAUTI_API_URL",
        secret: false,
        about: "eSauti REST base URL (ending in /api)",
    },
    Key {
        name: "esauti_events_url",
        env: "ESAUTI_EVENTS_URL",
        secret: false,
        about: "eSauti Event Injection URL",
    },
    Key {
        name: "esauti_api_key",
        env: "ESAUTI_API_KEY",
        secret: true,
        about: "eSauti API key",
    },
    Key {
        name: "esauti_hmac_secret",
        env: "ESAUTI_HMAC_SECRET",
        secret: true,
        about: "eSauti event-signing secret",
    },
];

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "FLAGWIRE_CONFIG";
/// The environment variable naming the profile.
pub const PROFILE_ENV: &str = "FLAGWIRE_PROFILE";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env(&'static str),
    /// A profile of the configuration file.
    Profile(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Profile(p) => write!(f, "profile {p}"),
        }
    }
}

/// A resolved value.
#[derive(Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: never in Debug output.
        f.debug_struct("Setting")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The resolved settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: BTreeMap<&'static str, Setting>,
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// The profile used, if any.
    pub profile: Option<String>,
}

impl Settings {
    /// Resolves every key: `flags` first, then `env`, then the profile.
    ///
    /// `config` and `profile` are the `--config` and `--profile` flags. A
    /// file or profile named explicitly (flag or environment) must exist;
    /// the default file (`$XDG_CONFIG_HOME/flagwire/config.toml` or
    /// `~/.config/flagwire/config.toml`) and profile (`default`) are
    /// optional.
    pub fn resolve(
        flags: &BTreeMap<&'static str, String>,
        env: &dyn Fn(&str) -> Option<String>,
        config: Option<&Path>,
        profile: Option<&str>,
    ) -> Result<Settings, CliError> {
        let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
        let (path, explicit_file) = match config
            .map(Path::to_path_buf)
            .or_else(|| nonempty(CONFIG_ENV).map(PathBuf::from))
        {
            Some(p) => (Some(p), true),
            None => (default_path(&nonempty), false),
        };
        let (profile_name, explicit_profile) =
            match profile.map(str::to_owned).or_else(|| nonempty(PROFILE_ENV)) {
                Some(p) => (p, true),
                None => ("default".to_owned(), false),
            };
        let mut settings = Settings::default();
        let mut from_file = BTreeMap::new();
        if let Some(path) = path {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let profiles = parse_file(&text)
                        .map_err(|m| CliError::usage(format!("{}: {m}", path.display())))?;
                    match profiles.get(&profile_name) {
                        Some(p) => {
                            from_file = p.clone();
                            settings.profile = Some(profile_name.clone());
                        }
                        None if explicit_profile => {
                            return Err(CliError::usage(format!(
                                "profile `{profile_name}` is not in {} (profiles: {})",
                                path.display(),
                                if profiles.is_empty() {
                                    "none".to_owned()
                                } else {
                                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                                }
                            )));
                        }
                        None => {}
                    }
                    settings.file = Some(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit_file => {
                    if explicit_profile {
                        return Err(CliError::usage(format!(
                            "profile `{profile_name}` asked for, but there is no configuration file ({})",
                            path.display()
                        )));
                    }
                }
                Err(e) => {
                    return Err(CliError::io(
                        format!("configuration file {}", path.display()),
                        e,
                    ));
                }
            }
        } else if explicit_profile {
            return Err(CliError::usage(format!(
                "profile `{profile_name}` asked for, but there is no configuration file"
            )));
        }
        for key in KEYS {
            let setting = if let Some(v) = flags.get(key.name) {
                Some(Setting {
                    value: v.clone(),
                    source: Source::Flag,
                })
            } else if let Some(v) = nonempty(key.env) {
                Some(Setting {
                    value: v,
                    source: Source::Env(key.env),
                })
            } else {
                from_file.remove(key.name).map(|v| Setting {
                    value: v,
                    source: Source::Profile(profile_name.clone()),
                })
            };
            if let Some(s) = setting {
                settings.values.insert(key.name, s);
            }
        }
        Ok(settings)
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.value.as_str())
    }

    /// The value and source of `name`, if set.
    pub fn setting(&self, name: &str) -> Option<&Setting> {
        self.values.get(name)
    }

    /// The value of `name`, or a usage error saying how to set it.
    pub fn require(&self, name: &str) -> Result<&str, CliError> {
        self.get(name).ok_or_else(|| {
            let key = KEYS.iter().find(|k| k.name == name);
            match key {
                Some(k) => CliError::usage(format!(
                    "no {} configured: pass --{}, set {} or add `{}` to a profile",
                    k.about,
                    k.name.replace('_', "-"),
                    k.env,
                    k.name
                )),
                None => CliError::usage(format!("no {name} configured")),
            }
        })
    }
}

/// The default configuration file, when a home is known.
fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(xdg) = env("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(xdg).join("flagwire/config.toml"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".config/flagwire/config.toml"))
}

/// Parses the configuration file into profiles of known keys.
fn parse_file(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The span is enough; the message may quote the line, which can
        // hold a secret.
        match e.span() {
            Some(span) => format!(
                "not valid TOML (at line {})",
                text[..span.start].matches('\n').count() + 1
            ),
            None => "not valid TOML".to_owned(),
        }
    })?;
    let mut out = BTreeMap::new();
    for (top, value) in &doc {
        if top != "profile" {
            return Err(format!(
                "unknown table or key `{top}` (settings go under [profile.<name>])"
            ));
        }
        let toml::Value::Table(profiles) = value else {
            return Err("`profile` must be a table of profiles".to_owned());
        };
        for (name, profile) in profiles {
            let toml::Value::Table(entries) = profile else {
                return Err(format!("`profile.{name}` must be a table"));
            };
            let mut map = BTreeMap::new();
            for (key, value) in entries {
                if !KEYS.iter().any(|k| k.name == key) {
                    let known: Vec<_> = KEYS.iter().map(|k| k.name).collect();
                    return Err(format!(
                        "unknown key `{key}` in [profile.{name}] (known: {})",
                        known.join(", ")
                    ));
                }
                let toml::Value::String(s) = value else {
                    return Err(format!("`{key}` in [profile.{name}] must be a string"));
                };
                map.insert(key.clone(), s.clone());
            }
            out.insert(name.clone(), map);
        }
    }
    Ok(out)
}

/// How a secret is shown: never its value.
pub fn redact(value: &str) -> String {
    format!("<redacted, {} characters>", value.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    /// A configuration file in a directory of its own, removed on drop.
    struct TempFile(PathBuf);

    impl std::ops::Deref for TempFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn temp_file(text: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("flagwire-cli-config-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    #[test]
    fn flags_beat_env_beat_profile() {
        let path = temp_file(
            "[profile.default]\napi_key = \"from-file\"\napi_url = \"http://file\"\ncapture_url = \"http://cap\"\n",
        );
        let env = env_of(&[("SCHEMATIC_API_URL", "http://env")]);
        let mut flags = BTreeMap::new();
        flags.insert("api_key", "from-flag".to_owned());
        let s = Settings::resolve(&flags, &env, Some(&path), None).unwrap();
        assert_eq!(s.get("api_key"), Some("from-flag"));
        assert_eq!(s.setting("api_key").unwrap().source, Source::Flag);
        assert_eq!(s.get("api_url"), Some("http://env"));
        assert_eq!(
            s.setting("api_url").unwrap().source,
            Source::Env("SCHEMATIC_API_URL")
        );
        assert_eq!(s.get("capture_url"), Some("http://cap"));
        assert_eq!(s.profile.as_deref(), Some("default"));
        assert!(s.get("webhook_secret").is_none());
    }

    #[test]
    fn named_profiles_and_their_errors() {
        let path = temp_file("[profile.local]\napi_key = \"k\"\n");
        let s =
            Settings::resolve(&BTreeMap::new(), &env_of(&[]), Some(&path), Some("local")).unwrap();
        assert_eq!(s.get("api_key"), Some("k"));
        let e = Settings::resolve(&BTreeMap::new(), &env_of(&[]), Some(&path), Some("prod"))
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("profiles: local"), "{e}");
        // Via the environment too.
        let env = env_of(&[(PROFILE_ENV, "local")]);
        let s = Settings::resolve(&BTreeMap::new(), &env, Some(&path), None).unwrap();
        assert_eq!(s.get("api_key"), Some("k"));
    }

    #[test]
    fn bad_files_are_usage_errors_without_their_contents() {
        let path = temp_file("[profile.x]\napi_kye = \"sch_secret_value\"\n");
        let e = Settings::resolve(&BTreeMap::new(), &env_of(&[]), Some(&path), None).unwrap_err();
        assert!(e.to_string().contains("unknown key `api_kye`"), "{e}");
        assert!(!e.to_string().contains("sch_secret_value"));
        let path = temp_file("[profile.x\napi_key = \"sch_secret_value\"\n");
        let e = Settings::resolve(&BTreeMap::new(), &env_of(&[]), Some(&path), None).unwrap_err();
        assert!(e.to_string().contains("not valid TOML"), "{e}");
        assert!(!e.to_string().contains("sch_secret_value"));
        let missing = std::env::temp_dir().join("flagwire-cli-no-such-dir/config.toml");
        let e =
            Settings::resolve(&BTreeMap::new(), &env_of(&[]), Some(&missing), None).unwrap_err();
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn the_default_file_is_optional() {
        let env = env_of(&[("HOME", "/nonexistent-flagwire-home")]);
        let s = Settings::resolve(&BTreeMap::new(), &env, None, None).unwrap();
        assert!(s.file.is_none());
        assert!(
            s.require("api_key")
                .unwrap_err()
                .to_string()
                .contains("SCHEMATIC_API_KEY")
        );
        let e = Settings::resolve(&BTreeMap::new(), &env, None, Some("p")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn redaction_hides_the_value() {
        assert_eq!(redact("sch_dev_abc"), "<redacted, 11 characters>");
        let s = Setting {
            value: "sch_secret".into(),
            source: Source::Flag,
        };
        assert!(!format!("{s:?}").contains("sch_secret"));
    }
}
