"""Knowledge base: load -> chunk -> embed -> FAISS + SQLite store -> hybrid retrieval with citations."""
