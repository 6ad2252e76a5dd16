"""The ground floor every app stands on: HTTP transport and tokens, typed errors, redaction, URL checks, logging,
admin base classes. No models, and no import of any app."""
