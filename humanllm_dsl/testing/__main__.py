"""`python -m humanllm_dsl.testing --port 8000 --latency 0.2`: serve the fake OpenAI server."""

from .openai_server import main

main()
