//! Gemini's two schema dialects. `parameters` / `responseSchema` take an
//! OpenAPI 3.0 subset (upper-case `type` names, `nullable`); the newer
//! `parametersJsonSchema` / `responseJsonSchema` take JSON Schema as is.
//!
//! Canonical schemas are JSON Schema, so requests go upstream in the JSON
//! Schema fields (what the google-genai SDK itself sends, see the
//! transcripts) and nothing has to be stripped; schemas a client wrote in
//! the OpenAPI subset are converted to JSON Schema on the way in.

use serde_json::{Map, Value};

/// OpenAPI-subset schema -> JSON Schema: `type` names lower-cased,
/// `nullable: true` folded into the type list, `TYPE_UNSPECIFIED` dropped.
/// Walks only schema positions, so property names and enum values that
/// happen to read `type` or `STRING` are left alone.
pub(crate) fn openapi_to_json_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
    let mut out = Map::with_capacity(obj.len());
    for (key, value) in obj {
        let converted = match key.as_str() {
            "nullable" => continue,
            "type" => match value.as_str() {
                Some("TYPE_UNSPECIFIED") => continue,
                Some(name) => {
                    let name = Value::String(name.to_ascii_lowercase());
                    if nullable && name != "null" {
                        Value::Array(vec![name, Value::String("null".into())])
                    } else {
                        name
                    }
                }
                None => value.clone(),
            },
            "properties" | "$defs" | "definitions" => map_values(value),
            "items" | "additionalProperties" | "not" => openapi_to_json_schema(value),
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => map_items(value),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

fn map_values(value: &Value) -> Value {
    match value.as_object() {
        Some(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), openapi_to_json_schema(v)))
                .collect(),
        ),
        None => value.clone(),
    }
}

fn map_items(value: &Value) -> Value {
    match value.as_array() {
        Some(items) => Value::Array(items.iter().map(openapi_to_json_schema).collect()),
        None => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_openapi_types_in_schema_positions_only() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "type": {"type": "STRING", "enum": ["STRING", "OBJECT"]},
                "tags": {"type": "ARRAY", "items": {"type": "INTEGER"}, "nullable": true},
                "any": {"anyOf": [{"type": "NUMBER"}, {"type": "BOOLEAN"}]},
                "free": {"type": "TYPE_UNSPECIFIED", "description": "x"}
            },
            "required": ["type"]
        });
        assert_eq!(
            openapi_to_json_schema(&schema),
            json!({
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["STRING", "OBJECT"]},
                    "tags": {"type": ["array", "null"], "items": {"type": "integer"}},
                    "any": {"anyOf": [{"type": "number"}, {"type": "boolean"}]},
                    "free": {"description": "x"}
                },
                "required": ["type"]
            })
        );
    }

    #[test]
    fn json_schema_is_unchanged() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}},
            "additionalProperties": false, "required": ["a"]});
        assert_eq!(openapi_to_json_schema(&schema), schema);
        assert_eq!(openapi_to_json_schema(&json!(true)), json!(true));
    }
}
