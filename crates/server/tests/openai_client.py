"""The official `openai` Python client against a metal-marlin server.

Run by tests/openai_client.rs with MARLIN_URL, MARLIN_MODEL and MARLIN_KEY set.
Exits non-zero (with the failing assertion) on any mismatch.
"""

import os

import openai
from openai import OpenAI

url = os.environ["MARLIN_URL"] + "/v1"
name = os.environ["MARLIN_MODEL"]
client = OpenAI(base_url=url, api_key=os.environ["MARLIN_KEY"], max_retries=0)

ids = [m.id for m in client.models.list().data]
assert ids == [name], ids

chat = client.chat.completions.create(
    model=name,
    messages=[{"role": "user", "content": "Name a fruit."}],
    max_tokens=8,
    temperature=0,
)
text = chat.choices[0].message.content
assert chat.object == "chat.completion"
assert text, chat
assert chat.choices[0].finish_reason in ("stop", "length")
assert chat.usage.completion_tokens >= 1
assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

pieces = []
finish = []
usage = None
for chunk in client.chat.completions.create(
    model=name,
    messages=[{"role": "user", "content": "Name a fruit."}],
    max_tokens=8,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish.append(c.finish_reason)
assert "".join(pieces) == text, (pieces, text)
assert finish == [chat.choices[0].finish_reason], finish
assert usage is not None and usage.completion_tokens == chat.usage.completion_tokens

cmpl = client.completions.create(model=name, prompt="1, 2, 3,", max_tokens=5, temperature=0)
assert cmpl.object == "text_completion"
assert cmpl.choices[0].text.startswith(" 4"), cmpl.choices[0].text
streamed = "".join(
    c.choices[0].text
    for c in client.completions.create(
        model=name, prompt="1, 2, 3,", max_tokens=5, temperature=0, stream=True
    )
    if c.choices
)
assert streamed == cmpl.choices[0].text, (streamed, cmpl.choices[0].text)

lp = client.chat.completions.create(
    model=name,
    messages=[{"role": "user", "content": "Hi"}],
    max_tokens=3,
    temperature=0,
    logprobs=True,
    top_logprobs=2,
)
content = lp.choices[0].logprobs.content
assert content and len(content[0].top_logprobs) == 2, content

two = client.completions.create(
    model=name, prompt="Once upon a time", max_tokens=6, temperature=1.0, seed=3, n=2
)
again = client.completions.create(
    model=name, prompt="Once upon a time", max_tokens=6, temperature=1.0, seed=3, n=2
)
assert [c.text for c in two.choices] == [c.text for c in again.choices]
assert sorted(c.index for c in two.choices) == [0, 1]

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("unknown model accepted")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e.body

try:
    client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "x"}], max_tokens=10**9
    )
    raise AssertionError("huge max_tokens accepted")
except openai.BadRequestError as e:
    assert e.code == "context_length_exceeded", e.body
    assert e.param == "max_tokens", e.body

try:
    client.chat.completions.create(model=name, messages=[], max_tokens=3)
    raise AssertionError("empty messages accepted")
except openai.BadRequestError as e:
    assert e.param == "messages", e.body

bad = OpenAI(base_url=url, api_key="wrong", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("bad key accepted")
except openai.AuthenticationError as e:
    assert e.code == "invalid_api_key", e.body

print("OK")
