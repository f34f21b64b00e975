"""OpenAI's Images API beside the reference's task API, under /openai/v1: the official OpenAI
SDKs and the tools built on them generate images through imagegate unchanged. Every image is a
task of the task API (same keys, limits, charge and refund); the answer waits for them."""
