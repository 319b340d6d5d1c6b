//! Incremental reading of an SSE byte stream for accounting, without holding it.
//!
//! The proxy forwards every chunk as received; this scanner only looks at complete
//! `data:` lines to pick out the generation id, the model and the usage (which may sit
//! on the usage chunk, on an error chunk, or on any other chunk). Comment lines
//! (`: OPENROUTER PROCESSING`) and `[DONE]` are skipped. Only the current partial line
//! is kept between chunks, capped so a hostile upstream cannot grow it without bound.
//!
//! The stream's [`UsageShape`] says how to read a payload: chat-style chunks (chat,
//! completions), OpenAI Responses events (usage in `response.completed`) or Anthropic
//! Messages events (usage in `message_start`, running output count in `message_delta`,
//! merged). `event:` lines are only read to notice the end of a typed stream.

use mai_core::openrouter::chat::{ChatError, ChatUsage};
use mai_core::openrouter::shapes::UsageShape;

/// Longest single SSE line we keep for parsing; longer lines are forwarded but ignored.
const MAX_LINE: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseScanner {
    shape: UsageShape,
    partial: Vec<u8>,
    overflow: bool,
    pub id: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub usage: Option<ChatUsage>,
    pub error: Option<ChatError>,
    pub done: bool,
    pub data_events: u64,
}

impl SseScanner {
    /// A scanner of chat-style streams (chat and legacy completions).
    pub fn new() -> Self {
        Self::default()
    }

    /// A scanner of streams of the given shape.
    pub fn for_shape(shape: UsageShape) -> Self {
        SseScanner {
            shape,
            ..Self::default()
        }
    }

    /// Feeds one chunk as it came off the wire.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(pos) = memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.partial.is_empty() && !self.overflow {
                self.line(line);
            } else {
                if !self.overflow {
                    self.partial.extend_from_slice(line);
                    let full = std::mem::take(&mut self.partial);
                    self.line(&full);
                }
                self.partial.clear();
                self.overflow = false;
            }
        }
        if !rest.is_empty() && !self.overflow {
            if self.partial.len() + rest.len() > MAX_LINE {
                self.overflow = true;
                self.partial = Vec::new();
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
    }

    /// Call at end of stream: a last line without a newline still counts.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() && !self.overflow {
            let full = std::mem::take(&mut self.partial);
            self.line(&full);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            // Comment, blank separator, or a field we do not use, except the name of
            // a typed stream's last event.
            if let Some(name) = line.strip_prefix(b"event:") {
                let name = name.strip_prefix(b" ").unwrap_or(name);
                if self.shape.is_terminal_event_name(name) {
                    self.done = true;
                }
            }
            return;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        self.data_events += 1;
        // Most chunks are content deltas: parse only the ones that can tell us
        // something we do not know yet.
        let needs_parse = self.id.is_none()
            || self.model.is_none()
            || contains(data, b"\"usage\"")
            || contains(data, b"\"error\"");
        if !needs_parse {
            return;
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(event) = self.shape.parse_event(text) else {
            return;
        };
        let meta = event.meta;
        if self.id.is_none() {
            self.id = meta.id;
        }
        if meta.model.is_some() {
            self.model = meta.model;
        }
        if meta.provider.is_some() {
            self.provider = meta.provider;
        }
        if let Some(u) = meta.usage {
            match self.usage.as_mut() {
                Some(acc) if event.cumulative => acc.merge_cumulative(&u),
                _ => self.usage = Some(u),
            }
        }
        if event.ends_stream {
            self.done = true;
        }
        if meta.error.is_some() {
            self.error = meta.error;
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {\"id\":\"gen-1\",\"provider\":\"DeepInfra\",\"model\":\"m/x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo!\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":250,\"total_tokens\":1450,\"cost\":0.00066}}\n\ndata: [DONE]\n\n";

    #[test]
    fn whole_stream_any_chunking() {
        for size in [1, 2, 3, 7, 64, 4096] {
            let mut s = SseScanner::new();
            for c in STREAM.as_bytes().chunks(size) {
                s.feed(c);
            }
            s.finish();
            assert_eq!(s.id.as_deref(), Some("gen-1"), "size {size}");
            assert_eq!(s.model.as_deref(), Some("m/x"));
            assert_eq!(s.provider.as_deref(), Some("DeepInfra"));
            let u = s.usage.as_ref().unwrap();
            assert_eq!(u.cost.unwrap().to_string(), "0.00066");
            assert_eq!(u.prompt_tokens, 1200);
            assert!(s.done);
            assert_eq!(s.data_events, 3);
        }
    }

    #[test]
    fn crlf_and_error_chunk_with_usage() {
        let text = "data: {\"id\":\"gen-2\",\"model\":\"a/b\",\"choices\":[]}\r\n\r\ndata: {\"id\":\"gen-2\",\"error\":{\"code\":502,\"message\":\"Provider disconnected\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"cost\":1e-7}}\r\n\r\n";
        let mut s = SseScanner::new();
        s.feed(text.as_bytes());
        assert_eq!(s.error.as_ref().unwrap().code.as_deref(), Some("502"));
        assert_eq!(s.usage.unwrap().cost.unwrap().to_string(), "0.0000001");
        assert!(!s.done);
    }

    /// The Responses stream of OpenAI's streaming guide, as OpenRouter would send it
    /// (keep-alive comments, `event:` lines, `cost` in usage [unconfirmed]).
    const RESPONSES: &str = ": OPENROUTER PROCESSING\n\nevent: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"gen-9\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"openai/gpt-4o-mini\",\"output\":[],\"usage\":null}}\n\nevent: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"gen-9\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"openai/gpt-4o-mini\",\"output\":[],\"usage\":{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":48,\"cost\":1.2e-5}}}\n\n";

    /// Anthropic's streaming example (docs.anthropic.com, "Streaming Messages").
    const MESSAGES: &str = "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-3-5-sonnet-20240620\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}\n\nevent: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\nevent: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\nevent: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}\n\nevent: message_stop\ndata: {\"type\": \"message_stop\"}\n\n";

    #[test]
    fn responses_and_messages_streams_any_chunking() {
        for size in [1, 5, 64, 4096] {
            let mut s = SseScanner::for_shape(UsageShape::Responses);
            for c in RESPONSES.as_bytes().chunks(size) {
                s.feed(c);
            }
            s.finish();
            assert_eq!(s.id.as_deref(), Some("gen-9"));
            assert_eq!(s.model.as_deref(), Some("openai/gpt-4o-mini"));
            let u = s.usage.as_ref().unwrap();
            assert_eq!((u.prompt_tokens, u.completion_tokens), (37, 11));
            assert_eq!(u.cost.unwrap().to_string(), "0.000012");
            assert!(s.done, "size {size}");

            let mut s = SseScanner::for_shape(UsageShape::Messages);
            for c in MESSAGES.as_bytes().chunks(size) {
                s.feed(c);
            }
            s.finish();
            assert_eq!(
                s.id.as_deref(),
                Some("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY")
            );
            let u = s.usage.as_ref().unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens, u.total_tokens),
                (25, 15, 40)
            );
            assert_eq!(u.cost, None, "no cost: the proxy records it as provisional");
            assert!(s.done, "size {size}");
        }
    }

    #[test]
    fn cut_stream_keeps_id_only() {
        let mut s = SseScanner::new();
        s.feed(b"data: {\"id\":\"gen-3\",\"model\":\"a/b\",\"choices\":[]}\n\ndata: {\"id\":\"gen-3\",\"cho");
        s.finish();
        assert_eq!(s.id.as_deref(), Some("gen-3"));
        assert!(s.usage.is_none());
    }
}
