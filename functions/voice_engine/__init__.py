"""The voice service: offline speech-to-text (faster-whisper) and text-to-speech (Piper)."""
