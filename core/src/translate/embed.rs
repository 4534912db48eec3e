//! Embeddings across dialects: OpenAI's `/embeddings` and Gemini's
//! `:embedContent` / `:batchEmbedContents`, through one canonical form
//! (texts in, one vector per text out).
//!
//! Lost in translation, by necessity: Gemini's `taskType` and `title`
//! (OpenAI has no such inputs), OpenAI's `user`, and token-array inputs
//! (only an OpenAI-compatible provider can read them). Same-dialect calls
//! do not come through here: they pass through with the model renamed.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::api::{ApiError, Dialect};
use crate::billing::MicroUsd;
use crate::usage::Usage;

/// What to embed, in no dialect.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbedRequest {
    pub inputs: Vec<String>,
    /// OpenAI's `dimensions`, Gemini's `outputDimensionality`.
    pub dimensions: Option<u64>,
}

/// The vectors, one per input in order, and the tokens the provider
/// counted.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub usage: Option<Usage>,
}

/// Which Gemini method a client called: one content, or a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeminiShape {
    Single,
    Batch,
}

/// How an OpenAI client wants its vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Float,
    /// Little-endian `f32`s, base64 (the official SDKs' default).
    Base64,
}

fn untranslatable(dialect: Dialect, what: &str) -> ApiError {
    ApiError::invalid_request(
        dialect,
        format!("{what} can only be embedded by a provider of the same API"),
    )
    .with_code("untranslatable_input")
}

// ------------------------------------------------------------------ OpenAI

/// An OpenAI embeddings body: `input` as a string or strings. Token arrays
/// cannot be translated.
pub fn decode_openai(body: &Map<String, Value>) -> Result<EmbedRequest, ApiError> {
    let inputs = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| untranslatable(Dialect::OpenAi, "token-array `input`"))?,
        _ => {
            return Err(ApiError::invalid_request(
                Dialect::OpenAi,
                "`input` must be a string or an array of strings",
            ))
        }
    };
    Ok(EmbedRequest {
        inputs,
        dimensions: body.get("dimensions").and_then(Value::as_u64),
    })
}

/// The client's `encoding_format` (`float` unless it says `base64`).
pub fn openai_encoding(body: &Map<String, Value>) -> Encoding {
    match body.get("encoding_format").and_then(Value::as_str) {
        Some("base64") => Encoding::Base64,
        _ => Encoding::Float,
    }
}

/// The request for an OpenAI-compatible provider. Vectors are asked for in
/// base64, a quarter of the bytes of JSON floats; `decode_openai_response`
/// reads either form, for servers that ignore the parameter.
pub fn encode_openai(req: &EmbedRequest, model: &str) -> Vec<u8> {
    let mut body = json!({"model": model, "input": req.inputs, "encoding_format": "base64"});
    if let Some(d) = req.dimensions {
        body["dimensions"] = Value::from(d);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

pub fn decode_openai_response(body: &[u8]) -> Option<Embeddings> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut items: Vec<(u64, Vec<f32>)> = Vec::new();
    for (i, item) in v.get("data")?.as_array()?.iter().enumerate() {
        let vector = match item.get("embedding")? {
            Value::Array(values) => values
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<_>>>()?,
            Value::String(b64) => floats_from_base64(b64)?,
            _ => return None,
        };
        let index = item
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(i as u64);
        items.push((index, vector));
    }
    items.sort_by_key(|(i, _)| *i);
    Some(Embeddings {
        vectors: items.into_iter().map(|(_, v)| v).collect(),
        usage: v.get("usage").and_then(Usage::from_openai),
    })
}

/// Vectors are written by serde from `f32`s, in their shortest exact form
/// (a `Value` would widen them to `f64` and print noise digits).
/// `cost` is the call's, shown as `usage.cost` (USD) as OpenRouter does.
pub fn encode_openai_response(
    emb: &Embeddings,
    model: &str,
    encoding: Encoding,
    cost: Option<MicroUsd>,
) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Vector<'a> {
        Float(&'a [f32]),
        Base64(String),
    }
    #[derive(Serialize)]
    struct Item<'a> {
        object: &'static str,
        index: usize,
        embedding: Vector<'a>,
    }
    let data: Vec<Item<'_>> = emb
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| Item {
            object: "embedding",
            index,
            embedding: match encoding {
                Encoding::Float => Vector::Float(vector),
                Encoding::Base64 => Vector::Base64(floats_to_base64(vector)),
            },
        })
        .collect();
    let prompt = emb.usage.map_or(0, |u| u.prompt_tokens);
    let mut usage = json!({"prompt_tokens": prompt, "total_tokens": prompt});
    if let (Some(cost), Value::Object(fields)) = (cost, &mut usage) {
        fields.insert("cost".into(), json!(cost.as_usd()));
    }
    let body = json!({
        "object": "list",
        "data": serde_json::value::to_raw_value(&data).ok(),
        "model": model,
        "usage": usage,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn floats_from_base64(text: &str) -> Option<Vec<f32>> {
    let bytes = BASE64.decode(text).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

fn floats_to_base64(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|f| f.to_le_bytes()).collect();
    BASE64.encode(bytes)
}

// ------------------------------------------------------------------ Gemini

/// A Gemini `embedContent` body (`content`) or `batchEmbedContents` body
/// (`requests[]`, each with its `content`). Only text parts translate;
/// a batch must agree on `outputDimensionality`.
pub fn decode_gemini(
    body: &Map<String, Value>,
    shape: GeminiShape,
) -> Result<EmbedRequest, ApiError> {
    let bad = |message: &'static str| ApiError::invalid_request(Dialect::Google, message);
    let requests: Vec<&Map<String, Value>> = match shape {
        GeminiShape::Single => vec![body],
        GeminiShape::Batch => body
            .get("requests")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| bad("`requests` must be a non-empty array"))?
            .iter()
            .map(|r| {
                r.as_object()
                    .ok_or_else(|| bad("each request must be an object"))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut inputs = Vec::with_capacity(requests.len());
    let mut dimensions = None;
    for (i, request) in requests.iter().enumerate() {
        let parts = request
            .get("content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array)
            .ok_or_else(|| bad("`content.parts` is required"))?;
        // The parts of one content make one text (Gemini embeds them as one).
        let mut text = String::new();
        for part in parts {
            let piece = part
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| untranslatable(Dialect::Google, "a non-text part"))?;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(piece);
        }
        inputs.push(text);
        let dims = request.get("outputDimensionality").and_then(Value::as_u64);
        if i > 0 && dims != dimensions {
            return Err(bad(
                "the requests of a batch must share `outputDimensionality` to be translated",
            ));
        }
        dimensions = dims;
    }
    Ok(EmbedRequest { inputs, dimensions })
}

/// The path (after the provider's base path) and body for a Gemini
/// provider: always `batchEmbedContents`, which takes one text or many.
pub fn encode_gemini(req: &EmbedRequest, model: &str) -> (String, Vec<u8>) {
    let name = format!("models/{model}");
    let requests: Vec<Value> = req
        .inputs
        .iter()
        .map(|text| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": text}]}});
            if let Some(d) = req.dimensions {
                r["outputDimensionality"] = Value::from(d);
            }
            r
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "requests": requests })).unwrap_or_default();
    (format!("/v1beta/models/{model}:batchEmbedContents"), body)
}

/// A same-dialect Gemini request: the client's method and body, with the
/// model renamed in the path and in each batch request (Gemini rejects a
/// batch whose requests name another model than its path).
pub fn native_gemini(
    body: &Map<String, Value>,
    shape: GeminiShape,
    model: &str,
) -> (String, Vec<u8>) {
    let mut body = body.clone();
    let name = Value::from(format!("models/{model}"));
    if let Some(Value::Array(requests)) = body.get_mut("requests") {
        for r in requests.iter_mut().filter_map(Value::as_object_mut) {
            r.insert("model".into(), name.clone());
        }
    } else if body.contains_key("model") {
        body.insert("model".into(), name);
    }
    let method = match shape {
        GeminiShape::Single => "embedContent",
        GeminiShape::Batch => "batchEmbedContents",
    };
    (
        format!("/v1beta/models/{model}:{method}"),
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// A Gemini answer of either method: `embedding` or `embeddings[]`.
pub fn decode_gemini_response(body: &[u8]) -> Option<Embeddings> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let values = |e: &Value| -> Option<Vec<f32>> {
        e.get("values")?
            .as_array()?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect()
    };
    let vectors = match (v.get("embeddings"), v.get("embedding")) {
        (Some(Value::Array(list)), _) => list.iter().map(values).collect::<Option<Vec<_>>>()?,
        (_, Some(one)) => vec![values(one)?],
        _ => return None,
    };
    let usage = v
        .get("usageMetadata")
        .and_then(|m| m.get("promptTokenCount"))
        .and_then(Value::as_u64)
        .map(|prompt_tokens| Usage {
            prompt_tokens,
            ..Usage::default()
        });
    Some(Embeddings { vectors, usage })
}

pub fn encode_gemini_response(emb: &Embeddings, shape: GeminiShape) -> Vec<u8> {
    #[derive(Serialize)]
    struct Values<'a> {
        values: &'a [f32],
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        embedding: Option<Values<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        embeddings: Option<Vec<Values<'a>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage_metadata: Option<Value>,
    }
    fn values(v: &[f32]) -> Values<'_> {
        Values { values: v }
    }
    let body = Body {
        embedding: (shape == GeminiShape::Single)
            .then(|| values(emb.vectors.first().map_or(&[][..], Vec::as_slice))),
        embeddings: (shape == GeminiShape::Batch)
            .then(|| emb.vectors.iter().map(|v| values(v)).collect()),
        usage_metadata: emb
            .usage
            .map(|u| json!({"promptTokenCount": u.prompt_tokens})),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn base64_vectors_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0e-3];
        assert_eq!(floats_from_base64(&floats_to_base64(&v)), Some(v));
        assert_eq!(floats_from_base64("AAA="), None);
        assert_eq!(floats_from_base64("not base64!"), None);
    }

    #[test]
    fn openai_inputs_and_token_arrays() {
        let one = decode_openai(&obj(json!({"input": "hi", "dimensions": 8}))).expect("ok");
        assert_eq!(one.inputs, ["hi"]);
        assert_eq!(one.dimensions, Some(8));
        let err = decode_openai(&obj(json!({"input": [[1, 2]]}))).unwrap_err();
        assert_eq!(
            (err.status(), err.code),
            (400, Some("untranslatable_input"))
        );
        assert!(decode_openai(&obj(json!({"input": 3}))).is_err());
    }

    #[test]
    fn gemini_batch_needs_one_dimensionality() {
        let body = obj(json!({"requests": [
            {"content": {"parts": [{"text": "a"}, {"text": "b"}]}, "outputDimensionality": 8},
            {"content": {"parts": [{"text": "c"}]}, "outputDimensionality": 8},
        ]}));
        let req = decode_gemini(&body, GeminiShape::Batch).expect("ok");
        assert_eq!(req.inputs, ["a\nb", "c"]);
        assert_eq!(req.dimensions, Some(8));
        let mixed = obj(json!({"requests": [
            {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
            {"content": {"parts": [{"text": "c"}]}},
        ]}));
        assert!(decode_gemini(&mixed, GeminiShape::Batch).is_err());
        let image = obj(json!({"content": {"parts": [{"inlineData": {"data": ""}}]}}));
        assert!(decode_gemini(&image, GeminiShape::Single).is_err());
        assert!(decode_gemini(&obj(json!({"requests": []})), GeminiShape::Batch).is_err());
    }

    #[test]
    fn native_gemini_renames_every_model() {
        let body = obj(json!({"requests": [{"model": "models/x", "content": {"parts": []}}]}));
        let (path, bytes) = native_gemini(&body, GeminiShape::Batch, "gemini-embedding-001");
        assert_eq!(
            path,
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["requests"][0]["model"], "models/gemini-embedding-001");
    }

    #[test]
    fn answers_translate_both_ways() {
        let gemini = br#"{"embeddings":[{"values":[0.5,-1]},{"values":[2]}],"usageMetadata":{"promptTokenCount":4}}"#;
        let emb = decode_gemini_response(gemini).expect("decodes");
        assert_eq!(emb.vectors, vec![vec![0.5, -1.0], vec![2.0]]);
        let openai: Value = serde_json::from_slice(&encode_openai_response(
            &emb,
            "gemini/m",
            Encoding::Float,
            None,
        ))
        .expect("json");
        assert_eq!(openai["data"][1]["embedding"], json!([2.0]));
        assert_eq!(
            openai["usage"],
            json!({"prompt_tokens": 4, "total_tokens": 4})
        );
        let b64 = encode_openai_response(&emb, "gemini/m", Encoding::Base64, None);
        let back = decode_openai_response(&b64).expect("decodes");
        assert_eq!(back.vectors, emb.vectors);
        let single: Value =
            serde_json::from_slice(&encode_gemini_response(&back, GeminiShape::Single))
                .expect("json");
        assert_eq!(single["embedding"]["values"], json!([0.5, -1.0]));
    }
}
