"""`humanllm draft`: the method's construction stage, from literature to a draft pattern.

Data flows one way: paper files and bibliographies (`papers`, `bibliography`, `collect`) ->
chunks (`chunks`) -> per-chunk and per-paper notes (`notes`, DSPy programs in `programs`) ->
a synthesis into a draft pattern and its checklist (`synthesis`) -> a formatted `.hpat` file and
its trace (`render`). `checklist` writes a fresh checklist for a pattern of the library.
"""
