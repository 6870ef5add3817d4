//! `flagwire completions` and `flagwire config`.

use clap::CommandFactory;
use serde_json::{Map, Value, json};

use crate::cli::{Cli, CompletionsArgs, ConfigCommand};
use crate::config::{KEYS, Settings, redact};
use crate::error::CliError;

pub fn completions(args: &CompletionsArgs) -> Result<(), CliError> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "flagwire", &mut out);
    Ok(())
}

pub fn config(cmd: &ConfigCommand, settings: &Settings, json: bool) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::Path => {
            match &settings.file {
                Some(p) if json => println!("{}", json!({"file": p.display().to_string()})),
                Some(p) => println!("{}", p.display()),
                None if json => println!("{}", json!({"file": null})),
                None => println!("(no configuration file)"),
            }
            Ok(())
        }
        ConfigCommand::Show => {
            if json {
                let mut map = Map::new();
                for key in KEYS {
                    let v = match settings.setting(key.name) {
                        Some(s) => json!({
                            "value": if key.secret { redact(&s.value) } else { s.value.clone() },
                            "source": s.source.to_string(),
                        }),
                        None => Value::Null,
                    };
                    map.insert(key.name.to_owned(), v);
                }
                println!(
                    "{}",
                    json!({
                        "file": settings.file.as_ref().map(|p| p.display().to_string()),
                        "profile": settings.profile,
                        "settings": map,
                    })
                );
            } else {
                match &settings.file {
                    Some(p) => println!(
                        "# file {} (profile {})",
                        p.display(),
                        settings.profile.as_deref().unwrap_or("none")
                    ),
                    None => println!("# no configuration file"),
                }
                for key in KEYS {
                    match settings.setting(key.name) {
                        Some(s) => {
                            let value = if key.secret {
                                redact(&s.value)
                            } else {
                                s.value.clone()
                            };
                            println!("{:<20} {value}  ({})", key.name, s.source);
                        }
                        None => println!("{:<20} -", key.name),
                    }
                }
            }
            Ok(())
        }
    }
}
