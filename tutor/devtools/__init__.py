"""Tools for developers: a scripted OpenAI-compatible server for tests, load tests and benchmarks."""
