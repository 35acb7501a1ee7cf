"""Provider modules written the way the README's "Add a provider" says (used by the tests)."""
