//! Client of the real OpenRouter API (base URL from config). See shared/specs/openrouter-api.md.
