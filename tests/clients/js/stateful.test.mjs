// Stateful Responses from Node clients with their default settings, against a real `akgate serve`
// (started by tests/clients/test_js_clients.py, which passes AKGATE_BASE_URL and AKGATE_KEY).
import assert from "node:assert/strict";
import { test } from "node:test";

import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import { z } from "zod";

const baseURL = process.env.AKGATE_BASE_URL;
const apiKey = process.env.AKGATE_KEY;

/** An AI SDK provider whose request bodies are recorded (to see what the SDK sends). */
function recordingProvider() {
  const bodies = [];
  const provider = createOpenAI({
    baseURL,
    apiKey,
    fetch: async (url, init) => {
      if (init?.body) bodies.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
  return { provider, bodies };
}

test("AI SDK multi-turn with default settings (item references)", async () => {
  const { provider, bodies } = recordingProvider();
  const model = provider.responses("demo");
  const messages = [{ role: "user", content: "hello there" }];
  const first = await generateText({ model, messages });
  assert.ok(first.text.length > 0);
  messages.push(...first.response.messages, { role: "user", content: "and again" });
  const second = await generateText({ model, messages });
  assert.ok(second.text.includes("and again"), second.text);
  // The SDK replays the first answer as a reference to the stored item.
  assert.ok(JSON.stringify(bodies[1].input).includes("item_reference"));

  // The same, streamed.
  messages.push(...second.response.messages, { role: "user", content: "third turn" });
  const third = streamText({ model, messages });
  let text = "";
  for await (const part of third.textStream) text += part;
  assert.ok(text.includes("third turn"), text);
});

test("AI SDK reasoning tool loop with execute", async () => {
  const { provider, bodies } = recordingProvider();
  const calls = [];
  const result = await generateText({
    model: provider.responses("demo-reasoning"),
    tools: {
      get_weather: tool({
        description: "The weather in a city",
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => {
          calls.push(city);
          return { city, temperature: 21 };
        },
      }),
    },
    stopWhen: stepCountIs(4),
    prompt: "Use get_weather for Paris, please.",
  });
  assert.equal(calls.length, 1);
  assert.ok(result.steps.length >= 2);
  assert.ok(result.text.length > 0, JSON.stringify(result.steps.map((s) => s.finishReason)));
  assert.ok(result.reasoningText && result.reasoningText.length > 0);
  const replay = JSON.stringify(bodies[1].input);
  assert.ok(replay.includes("item_reference") && replay.includes("function_call_output"));
});

test("openai npm package: chain, retrieve, input items, delete", async () => {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
  const first = await client.responses.create({ model: "demo", input: "one" });
  const stream = await client.responses.create({
    model: "demo",
    input: "two",
    previous_response_id: first.id,
    stream: true,
  });
  let createdId;
  let completedId;
  for await (const event of stream) {
    if (event.type === "response.created") createdId = event.response.id;
    if (event.type === "response.completed") completedId = event.response.id;
  }
  assert.equal(createdId, completedId);
  const second = await client.responses.retrieve(completedId);
  assert.equal(second.previous_response_id, first.id);
  const items = await client.responses.inputItems.list(second.id);
  assert.equal(items.data.length, 1);
  await client.responses.delete(first.id);
  await assert.rejects(client.responses.retrieve(first.id), (err) => err.status === 404);
  await assert.rejects(
    client.responses.create({ model: "demo", input: "x", previous_response_id: first.id }),
    (err) => err.status === 400 && err.code === "previous_response_not_found",
  );
});
