"""`humanllm lsp`: a language server for `.hpat` files (diagnostics, hover, navigation,
completion, formatting, rename). Only `cli` is imported by the `humanllm` command; pygls is
imported when the server starts."""
