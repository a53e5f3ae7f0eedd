"""One OpenAI chat completion through the lab's endpoint (router -> rehearsal engines)."""

import json
import subprocess
import sys

from openai import OpenAI

lab = json.loads(subprocess.check_output(["sglfleet", "lab", "status", "--json"]))
client = OpenAI(base_url=lab["endpoint"], api_key=lab["api_key"], max_retries=5, timeout=60)
model = client.models.list().data[0].id
prompt = sys.argv[1] if len(sys.argv) > 1 else "Hello"
reply = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": prompt}], max_tokens=32
)
print(f"endpoint: {lab['endpoint']}  model: {model}")
print(f"reply: {reply.choices[0].message.content}")
