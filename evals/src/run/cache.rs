//! The cache of identical requests: key = SHA-256 of the target's identity and the canonical
//! JSON of what it is sent; value = the successful [`Output`]. In memory (a bounded FIFO) and,
//! optionally, on disk as an append-only JSONL file that survives runs.
//!
//! Memory: the in-memory part holds at most `memory_entries` outputs; the disk part keeps only an
//! index of key → (offset, length) in memory (about 100 bytes an entry) and reads an output back
//! when asked. Writes are small appends under a lock, made from the run's task.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::output::Output;
use crate::target::{ChatRequest, Target};

/// A cache key: SHA-256 of the target identity and the canonical request.
pub type CacheKey = [u8; 32];

/// The file a cache directory holds.
pub const CACHE_FILE: &str = "responses.jsonl";

/// Default number of outputs kept in memory.
pub const DEFAULT_MEMORY_ENTRIES: usize = 10_000;

/// A failure of the on-disk cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cache {path}: entry at byte {offset} is unreadable: {message}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
struct DiskLine {
    key: String,
    output: Output,
}

struct Memory {
    map: HashMap<CacheKey, Output>,
    order: VecDeque<CacheKey>,
    capacity: usize,
}

struct Disk {
    path: PathBuf,
    file: File,
    index: HashMap<CacheKey, (u64, u32)>,
    end: u64,
}

/// Counters of a cache's use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries_on_disk: usize,
}

/// A cache of identical requests, shared by runs (`Arc<Cache>`).
pub struct Cache {
    memory: Mutex<Memory>,
    disk: Option<Mutex<Disk>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache in memory only, holding at most `memory_entries` outputs (oldest dropped first).
    pub fn in_memory(memory_entries: usize) -> Self {
        Cache {
            memory: Mutex::new(Memory {
                map: HashMap::new(),
                order: VecDeque::new(),
                capacity: memory_entries,
            }),
            disk: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache backed by `dir/responses.jsonl` (created if missing), indexed now. A torn last
    /// line (a crash mid-append) is skipped and the next append starts on a fresh line.
    pub fn open_dir(dir: &Path, memory_entries: usize) -> Result<Self, CacheError> {
        let path = dir.join(CACHE_FILE);
        let io = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut index = HashMap::new();
        let mut offset = 0u64;
        let mut last_byte = b'\n';
        {
            let mut reader = BufReader::new(&mut file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(io)?;
                if n == 0 {
                    break;
                }
                last_byte = line[n - 1];
                if let Some(key) = line_key(&line) {
                    index.insert(key, (offset, n as u32));
                }
                offset += n as u64;
            }
        }
        if last_byte != b'\n' {
            file.write_all(b"\n").map_err(io)?;
            offset += 1;
        }
        let mut cache = Cache::in_memory(memory_entries);
        cache.disk = Some(Mutex::new(Disk {
            path,
            file,
            index,
            end: offset,
        }));
        Ok(cache)
    }

    /// The key of `request` sent to `target`. The item id is part of it only when the target's
    /// answers depend on it (agents and recorded files see it; models do not).
    pub fn key(target: &dyn Target, request: &ChatRequest) -> CacheKey {
        let mut sent = serde_json::json!({
            "messages": request.messages,
            "tools": request.tools,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        });
        if target.answers_depend_on_item_id()
            && let Some(map) = sent.as_object_mut()
        {
            map.insert("item_id".into(), request.item_id.clone().into());
        }
        let mut canonical = String::new();
        canonical_json(&sent, &mut canonical);
        let mut h = Sha256::new();
        h.update(b"meshos-evals-cache-v1\n");
        h.update(target.identity().as_bytes());
        h.update(b"\n");
        h.update(canonical.as_bytes());
        h.finalize().into()
    }

    /// The cached output for `key`, if any (memory first, then disk).
    pub fn get(&self, key: &CacheKey) -> Result<Option<Output>, CacheError> {
        if let Some(found) = lock(&self.memory).map.get(key).cloned() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(found));
        }
        let from_disk = match &self.disk {
            Some(disk) => lock(disk).read(key)?,
            None => None,
        };
        match from_disk {
            Some(output) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.remember(*key, output.clone());
                Ok(Some(output))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Stores a successful output.
    pub fn put(&self, key: CacheKey, output: &Output) -> Result<(), CacheError> {
        if let Some(disk) = &self.disk {
            lock(disk).append(key, output)?;
        }
        self.remember(key, output.clone());
        Ok(())
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries_on_disk: self.disk.as_ref().map_or(0, |d| lock(d).index.len()),
        }
    }

    fn remember(&self, key: CacheKey, output: Output) {
        let mut memory = lock(&self.memory);
        if memory.capacity == 0 {
            return;
        }
        if memory.map.insert(key, output).is_none() {
            memory.order.push_back(key);
        }
        while memory.map.len() > memory.capacity {
            match memory.order.pop_front() {
                Some(old) => {
                    memory.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

impl Disk {
    fn read(&mut self, key: &CacheKey) -> Result<Option<Output>, CacheError> {
        let Some(&(offset, len)) = self.index.get(key) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; len as usize];
        let io = |source| CacheError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.seek(SeekFrom::Start(offset)).map_err(io)?;
        self.file.read_exact(&mut buf).map_err(io)?;
        let line: DiskLine = serde_json::from_slice(&buf).map_err(|e| CacheError::Corrupt {
            path: self.path.clone(),
            offset,
            message: e.to_string(),
        })?;
        Ok(Some(line.output))
    }

    fn append(&mut self, key: CacheKey, output: &Output) -> Result<(), CacheError> {
        if self.index.contains_key(&key) {
            return Ok(());
        }
        let line = DiskLine {
            key: hex::encode(key),
            output: output.clone(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| CacheError::Corrupt {
            path: self.path.clone(),
            offset: self.end,
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        // The file is opened for append: the write lands at the end whatever the read cursor.
        self.file
            .write_all(&bytes)
            .map_err(|source| CacheError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.index.insert(key, (self.end, bytes.len() as u32));
        self.end += bytes.len() as u64;
        Ok(())
    }
}

fn line_key(line: &[u8]) -> Option<CacheKey> {
    #[derive(Deserialize)]
    struct KeyOnly {
        key: String,
    }
    let parsed: KeyOnly = serde_json::from_slice(line).ok()?;
    let bytes = hex::decode(parsed.key).ok()?;
    bytes.try_into().ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a cache that is still consistent enough to read.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Canonical JSON: object keys sorted (by UTF-8 bytes), no whitespace, serde_json's number and
/// string forms. Independent of whether serde_json preserves insertion order.
pub fn canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{ChatMessage, TargetFuture};

    struct Fake(bool);
    impl Target for Fake {
        fn identity(&self) -> String {
            "fake".into()
        }
        fn answers_depend_on_item_id(&self) -> bool {
            self.0
        }
        fn complete<'a>(&'a self, _: &'a ChatRequest) -> TargetFuture<'a> {
            Box::pin(std::future::ready(Ok(Output::default())))
        }
    }

    fn request(id: &str, text: &str) -> ChatRequest {
        ChatRequest {
            item_id: id.into(),
            messages: vec![ChatMessage::new("user", text)],
            ..Default::default()
        }
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let mut s = String::new();
        canonical_json(
            &serde_json::json!({"b": 1, "a": [true, {"d": null, "c": "x"}]}),
            &mut s,
        );
        assert_eq!(s, r#"{"a":[true,{"c":"x","d":null}],"b":1}"#);
    }

    #[test]
    fn keys_follow_what_the_target_sees() {
        let model = Fake(false);
        let agent = Fake(true);
        assert_eq!(
            Cache::key(&model, &request("1", "hi")),
            Cache::key(&model, &request("2", "hi"))
        );
        assert_ne!(
            Cache::key(&agent, &request("1", "hi")),
            Cache::key(&agent, &request("2", "hi"))
        );
        assert_ne!(
            Cache::key(&model, &request("1", "hi")),
            Cache::key(&model, &request("1", "ho"))
        );
    }

    #[test]
    fn memory_is_bounded() {
        let cache = Cache::in_memory(2);
        for i in 0..5u8 {
            cache
                .put([i; 32], &Output::default())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(matches!(cache.get(&[0; 32]), Ok(None)));
        assert!(matches!(cache.get(&[4; 32]), Ok(Some(_))));
        assert_eq!(lock(&cache.memory).map.len(), 2);
    }

    #[test]
    fn disk_survives_reopen_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = Output {
            text: "kept".into(),
            ..Default::default()
        };
        {
            let cache = Cache::open_dir(dir.path(), 0).unwrap_or_else(|e| panic!("{e}"));
            cache.put([1; 32], &out).unwrap_or_else(|e| panic!("{e}"));
        }
        // A torn append from a crash.
        let path = dir.path().join(CACHE_FILE);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"{\"key\":\"02")
            .unwrap_or_else(|e| panic!("{e}"));
        drop(f);
        let cache = Cache::open_dir(dir.path(), 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.get(&[1; 32]).ok().flatten(), Some(out.clone()));
        cache.put([3; 32], &out).unwrap_or_else(|e| panic!("{e}"));
        let cache = Cache::open_dir(dir.path(), 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cache.get(&[3; 32]).ok().flatten(), Some(out));
        assert_eq!(cache.stats().entries_on_disk, 2);
    }
}
