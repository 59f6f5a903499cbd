"""`humanllm annotate`: the human study (raters score checklist items and holistic scales of
sampled samples) and the pattern review (experts rate patterns on a 4-point scale), served from
a local web app and stored in SQLite. See docs/annotate.md."""
