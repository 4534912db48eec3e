//! Start-up warnings: settings with which the gateway starts but will not
//! work as its operator probably meant. Each names what to change.

use crate::config::{Config, ProviderConfig};

/// The warnings for `config`, given how many keys the store holds.
pub fn warnings(config: &Config, stored_keys: usize) -> Vec<String> {
    let mut out: Vec<String> = config
        .providers
        .iter()
        .filter(|p| p.api_key.is_none())
        .map(keyless)
        .collect();
    if config.master_key.is_none() {
        out.push(if stored_keys == 0 {
            "no AROUTER_MASTER_KEY and no keys in the store: every request will be refused \
             with 401. Set one (for example AROUTER_MASTER_KEY=sk-$(openssl rand -hex 24)), \
             restart, and send it as `Authorization: Bearer <key>`"
                .to_string()
        } else {
            format!(
                "AROUTER_MASTER_KEY is not set: only the {stored_keys} key(s) in the store are accepted"
            )
        });
    }
    out
}

/// A provider that will be called without credentials. The base URL is
/// not shown: it may carry credentials of its own.
fn keyless(p: &ProviderConfig) -> String {
    let how = match &p.key_var {
        Some(var) => format!("{var} is not set"),
        None => "its config table has no api_key_env".to_string(),
    };
    format!(
        "provider \"{}\" has no API key ({how}): its requests go out without credentials. \
         That is fine for a local server (Ollama, vLLM, llama.cpp); a hosted API will refuse them",
        p.name
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cli::ServeArgs;

    fn config(vars: &[(&str, &str)], toml: Option<&str>) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let mut args = ServeArgs::default();
        if let Some(toml) = toml {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, toml).unwrap();
            args.config = Some(path);
        }
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(&args, &|k| map.get(k).cloned()).unwrap()
    }

    #[test]
    fn keyless_providers_and_an_unusable_gateway_are_named() {
        let c = config(
            &[
                ("OPENAI_API_KEY", "sk-1"),
                ("ANTHROPIC_BASE_URL", "http://127.0.0.1:1"),
                ("AROUTER_MASTER_KEY", "sk-m"),
            ],
            Some("[providers.local]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\n[providers.hosted]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\napi_key_env = \"HOSTED_KEY\"\n"),
        );
        let w = warnings(&c, 0);
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].contains("\"anthropic\"") && w[0].contains("ANTHROPIC_API_KEY is not set"));
        assert!(w[1].contains("\"hosted\"") && w[1].contains("HOSTED_KEY is not set"));
        assert!(w[2].contains("\"local\"") && w[2].contains("no api_key_env"));
        assert!(w
            .iter()
            .all(|w| w.contains("local server") && !w.contains("http://")));
    }

    #[test]
    fn the_master_key_warning_says_how_to_get_in() {
        let c = config(&[("OPENAI_API_KEY", "sk-1")], None);
        let w = warnings(&c, 0);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("every request will be refused") && w[0].contains("AROUTER_MASTER_KEY=")
        );
        let w = warnings(&c, 2);
        assert!(w[0].contains("only the 2 key(s) in the store"), "{w:?}");
        let c = config(
            &[("OPENAI_API_KEY", "sk-1"), ("AROUTER_MASTER_KEY", "sk-m")],
            None,
        );
        assert!(warnings(&c, 0).is_empty());
    }
}
