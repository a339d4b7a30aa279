//! The learned half of the screen: a logistic regression over hashed features of the word
//! view (character 3-5-grams, word 1-2-grams) and a few dense features from the rules' own
//! signals, trained offline by `policy/train/train_injection.py` and compiled in from
//! `policy/model/injection.bin`.
//!
//! Why windows: an instruction hidden in a long document is a few dozen bytes among
//! thousands; a bag of n-grams over the whole document dilutes it. Each n-gram's weight is
//! summed into the block of `STRIDE` bytes where it starts, once, and a window is two
//! neighbouring blocks: windows of `WINDOW` bytes every `STRIDE` bytes cost one pass and 8
//! bytes per block. Text up to a window long is one window (the form the model was trained
//! on).
//!
//! The feature layout is this file's alone: the training script asks `features_for_training`
//! (through `examples/injection_features.rs`) for the vectors it fits, so the two can never
//! disagree on hashing or scaling.

/// Bits of the hashed feature space: 2^18 weights, one byte each.
pub(crate) const BITS: u32 = 18;
const SLOTS: usize = 1 << BITS;
/// Dense features, in this order (see `dense_features`).
pub const DENSE_FEATURES: [&str; 7] = [
    "rule_score",
    "instruction_override",
    "role_play",
    "delimiter",
    "exfiltration",
    "encoded_payload",
    "distinct_signals",
];
/// Window length and stride, in bytes of the word view.
const WINDOW: usize = 2048;
const STRIDE: usize = 1024;
/// The hashed features' sum is divided by the square root of their count, but of at least this
/// many: without a floor, the two or three n-grams of a one-word text ("é") each weigh as
/// much as a paragraph's worth, and one unlucky n-gram decided the verdict.
const MIN_NORM_FEATURES: u32 = 64;
/// Below this many bytes of word view the model has no vote: "Echo: hello" or "é" carry too
/// few n-grams to judge, and the rules decide alone.
pub(crate) const MIN_MODEL_BYTES: usize = 32;

const MAGIC: &[u8; 8] = b"MOSINJ01";

/// The compiled-in model; empty when none has been trained (then the screen is rules only).
static MODEL_BYTES: &[u8] = include_bytes!("../../model/injection.bin");

/// Where the screened content came from. In data from tools and retrieved documents, any
/// instruction addressed to the model is out of place, so the screen is stricter there.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ContentSource {
    /// Typed or sent by the user (or the agent's own prompt).
    #[default]
    User,
    /// Returned by a tool call.
    ToolResult,
    /// A retrieved document (RAG, web page, e-mail, file).
    RetrievedDocument,
    /// An MCP tool's definition (description, schema): written to instruct a model by design,
    /// so it is screened by the rules alone (the gateway's poisoning scan covers the rest).
    ToolDefinition,
}

impl ContentSource {
    /// Parses the wire name (`user`, `tool_result`, `retrieved_document`).
    pub fn parse(s: &str) -> Option<ContentSource> {
        match s {
            "user" => Some(ContentSource::User),
            "tool_result" => Some(ContentSource::ToolResult),
            "retrieved_document" => Some(ContentSource::RetrievedDocument),
            "tool_definition" => Some(ContentSource::ToolDefinition),
            _ => None,
        }
    }

    /// Whether the content is data the model should never take instructions from.
    pub fn is_untrusted_data(self) -> bool {
        matches!(
            self,
            ContentSource::ToolResult | ContentSource::RetrievedDocument
        )
    }
}

/// A trained model: weights, bias and the decision thresholds chosen on development data.
#[derive(Debug)]
pub(crate) struct LinearModel {
    bias: f32,
    /// Real weight of hashed slot `i` is `hashed[i] * scale`.
    scale: f32,
    hashed: Box<[i8; SLOTS]>,
    dense: [f32; DENSE_FEATURES.len()],
    /// Probability at or above which user content is flagged.
    pub(crate) threshold_user: f32,
    /// The same for tool results and retrieved documents.
    pub(crate) threshold_data: f32,
    /// The rules' score at or above which the rules flag on their own (the floor).
    pub(crate) rule_floor: f32,
}

impl LinearModel {
    /// The compiled-in model, or `None` when the build carries none (an empty file).
    pub(crate) fn builtin() -> Option<LinearModel> {
        if MODEL_BYTES.is_empty() {
            return None;
        }
        // The file is committed and tested (`the_builtin_model_loads`); a corrupt one is a
        // build defect, not input.
        Some(LinearModel::parse(MODEL_BYTES).expect("policy/model/injection.bin is valid"))
    }

    /// Reads the model file: magic, bits, dense count, bias, scale, three thresholds, the
    /// dense weights (f32) and the hashed weights (i8), little-endian.
    pub(crate) fn parse(bytes: &[u8]) -> Result<LinearModel, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != MAGIC {
            return Err("not an injection model (bad magic)".into());
        }
        let bits = r.u32()?;
        let n_dense = r.u32()? as usize;
        if bits != BITS || n_dense != DENSE_FEATURES.len() {
            return Err(format!(
                "model has {bits} bits and {n_dense} dense features; this build expects {BITS} and {}",
                DENSE_FEATURES.len()
            ));
        }
        let bias = r.f32()?;
        let scale = r.f32()?;
        let threshold_user = r.f32()?;
        let threshold_data = r.f32()?;
        let rule_floor = r.f32()?;
        let mut dense = [0f32; DENSE_FEATURES.len()];
        for d in &mut dense {
            *d = r.f32()?;
        }
        let hashed: Box<[i8]> = r.take(SLOTS)?.iter().map(|&b| b as i8).collect();
        let hashed: Box<[i8; SLOTS]> = hashed
            .try_into()
            .map_err(|_| "hashed weights of the wrong length".to_string())?;
        if r.at != bytes.len() {
            return Err("trailing bytes after the weights".into());
        }
        Ok(LinearModel {
            bias,
            scale,
            hashed,
            dense,
            threshold_user,
            threshold_data,
            rule_floor,
        })
    }

    /// The probability that `word` (a word view) is an injection, as the highest over its
    /// windows, and the window it came from (view byte offsets).
    pub(crate) fn score(
        &self,
        word: &[u8],
        dense: &[f32; DENSE_FEATURES.len()],
    ) -> (f32, (usize, usize)) {
        let dense_part: f32 = self.dense.iter().zip(dense).map(|(w, x)| w * x).sum();
        let z = |sum: i32, count: u32| {
            let n = count.max(MIN_NORM_FEATURES);
            self.bias + sum as f32 * self.scale / (n as f32).sqrt() + dense_part
        };
        if word.len() <= WINDOW {
            // One window (most texts): no per-position sums needed.
            let (mut sum, mut count) = (0i32, 0u32);
            for_each_feature(word, |_, slot| {
                sum += i32::from(self.hashed[slot & (SLOTS - 1)]);
                count += 1;
            });
            return (sigmoid(z(sum, count)), (0, word.len()));
        }
        // Sums per block of `STRIDE` bytes (by a feature's start): a window is two blocks, and
        // the memory is 8 bytes per KiB of text, not per byte.
        let blocks = word.len().div_ceil(STRIDE);
        let mut sums = vec![0i32; blocks];
        let mut counts = vec![0u32; blocks];
        for_each_feature(word, |pos, slot| {
            let b = pos / STRIDE;
            sums[b] += i32::from(self.hashed[slot & (SLOTS - 1)]);
            counts[b] += 1;
        });
        let mut best = (f32::NEG_INFINITY, (0, word.len()));
        for (k, (s, e)) in windows(word.len()).enumerate() {
            let z = z(sums[k] + sums[k + 1], counts[k] + counts[k + 1]);
            if z > best.0 {
                best = (z, (s, e));
            }
        }
        (sigmoid(best.0), best.1)
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// The windows of a view of `len` bytes longer than one window: block `k` and block `k + 1`
/// (`STRIDE` bytes each) for every `k` but the last, so windows overlap by a block and the
/// last one ends at the end (it may be shorter than `WINDOW`).
fn windows(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let blocks = len.div_ceil(STRIDE);
    (0..blocks.saturating_sub(1)).map(move |k| (k * STRIDE, ((k + 2) * STRIDE).min(len)))
}

/// The dense features of a text from the rules' verdict on it.
pub(crate) fn dense_features<'a>(
    score: f64,
    signals: impl Iterator<Item = (&'a str, f64)>,
) -> [f32; DENSE_FEATURES.len()] {
    let mut d = [0f32; DENSE_FEATURES.len()];
    d[0] = score as f32;
    let mut distinct = 0u32;
    for (category, weight) in signals {
        distinct += 1;
        if let Some(i) = DENSE_FEATURES[1..6].iter().position(|c| *c == category) {
            d[i + 1] = d[i + 1].max(weight as f32);
        }
    }
    d[6] = (1.0 + distinct as f32).ln();
    d
}

/// Every hashed feature of a word view, as (start position, slot): character 3-, 4- and
/// 5-grams, and word unigrams and bigrams (at the word's start).
fn for_each_feature(word: &[u8], mut emit: impl FnMut(usize, usize)) {
    for i in 0..word.len() {
        let mut key = 0u64;
        for n in 0..5 {
            let Some(&b) = word.get(i + n) else { break };
            key = (key << 8) | u64::from(b);
            if n >= 2 {
                emit(
                    i,
                    slot_of(key ^ ((n as u64 + 1) << 56), 0x9E37_79B9_7F4A_7C15),
                );
            }
        }
    }
    let mut prev: Option<u64> = None;
    let mut start = None;
    for (i, &b) in word
        .iter()
        .enumerate()
        .chain(std::iter::once((word.len(), &b' ')))
    {
        let sep = b == b' ' || b == b'\n';
        match (sep, start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                let h = fnv1a(&word[s..i]);
                emit(s, slot_of(h, 0xC2B2_AE3D_27D4_EB4F));
                if let Some(p) = prev {
                    emit(s, slot_of(p.rotate_left(21) ^ h, 0x1656_67B1_9E37_79F9));
                }
                prev = Some(h);
                start = None;
            }
            _ => {}
        }
        if b == b'\n' {
            // A sentence break: no bigram across it.
            prev = None;
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[inline(always)]
fn slot_of(key: u64, seed: u64) -> usize {
    let h = (key ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let h = (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (h >> (64 - BITS)) as usize
}

/// The training form of one text: the hashed features of its word view as (slot, value),
/// each value its count over the square root of the number of features, at least
/// `MIN_NORM_FEATURES` (as `score` scales a window). For the training script only.
pub(crate) fn training_vector(word: &[u8]) -> Vec<(u32, f32)> {
    let mut counts: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    let mut total = 0u32;
    // The same window the scorer would pick for a text longer than one window cannot be
    // known without a model: train on the first window, which is the whole text when it fits.
    let end = word.len().min(WINDOW);
    for_each_feature(&word[..end], |_, slot| {
        *counts.entry(slot).or_default() += 1;
        total += 1;
    });
    let norm = (total.max(MIN_NORM_FEATURES) as f32).sqrt();
    let mut v: Vec<(u32, f32)> = counts
        .into_iter()
        .map(|(slot, c)| (slot as u32, c as f32 / norm))
        .collect();
    v.sort_unstable_by_key(|(s, _)| *s);
    v
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let out = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("model file ends early at byte {}", self.at))?;
        self.at += n;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_bits(self.u32()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_text_and_end_at_its_end() {
        // `score` takes texts up to one window in one piece; longer ones are cut like this.
        let w: Vec<_> = windows(WINDOW + 10).collect();
        assert_eq!(w, vec![(0, WINDOW), (STRIDE, WINDOW + 10)]);
        let w: Vec<_> = windows(5000).collect();
        assert_eq!(w.first(), Some(&(0, WINDOW)));
        assert_eq!(w.last().map(|x| x.1), Some(5000));
        assert!(
            w.iter().all(|(s, e)| e - s <= WINDOW && e - s > STRIDE),
            "{w:?}"
        );
        assert!(w.windows(2).all(|p| p[1].0 < p[0].1), "{w:?}");
    }

    #[test]
    fn features_are_stable_and_in_range() {
        let mut slots = Vec::new();
        for_each_feature(b" ignore previous instructions ", |pos, slot| {
            assert!(slot < SLOTS);
            slots.push((pos, slot));
        });
        // 30 bytes: 28 trigrams + 27 4-grams + 26 5-grams, 3 words, 2 bigrams.
        assert_eq!(slots.len(), 28 + 27 + 26 + 3 + 2);
        let mut again = Vec::new();
        for_each_feature(b" ignore previous instructions ", |pos, slot| {
            again.push((pos, slot))
        });
        assert_eq!(slots, again);
    }

    #[test]
    fn a_truncated_or_foreign_model_file_is_refused() {
        assert!(LinearModel::parse(b"").is_err());
        assert!(LinearModel::parse(b"MOSINJ01\x12\0\0\0").is_err());
        let mut wrong_bits = MAGIC.to_vec();
        wrong_bits.extend_from_slice(&16u32.to_le_bytes());
        wrong_bits.extend_from_slice(&7u32.to_le_bytes());
        let err = LinearModel::parse(&wrong_bits).unwrap_err();
        assert!(err.contains("16 bits"), "{err}");
    }

    #[test]
    fn content_sources_parse_by_their_wire_names() {
        assert_eq!(
            ContentSource::parse("tool_result"),
            Some(ContentSource::ToolResult)
        );
        assert_eq!(
            ContentSource::parse("retrieved_document"),
            Some(ContentSource::RetrievedDocument)
        );
        assert_eq!(ContentSource::parse("user"), Some(ContentSource::User));
        assert_eq!(ContentSource::parse("web"), None);
        assert!(!ContentSource::User.is_untrusted_data());
        assert!(ContentSource::ToolResult.is_untrusted_data());
        assert_eq!(
            ContentSource::parse("tool_definition"),
            Some(ContentSource::ToolDefinition)
        );
        assert!(!ContentSource::ToolDefinition.is_untrusted_data());
    }
}
