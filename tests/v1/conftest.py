"""The v1 suite runs with openai==1.20.0, the last SDK of the v1 Assistants API (`OpenAI-Beta: assistants=v1`)."""

import openai

assert openai.__version__ == "1.20.0", f"the v1 suite needs openai==1.20.0, not {openai.__version__}"
