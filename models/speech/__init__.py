"""Speech engines: text -> Audio (local Kokoro, Piper, OpenJTalk; the VOICEVOX service)."""
