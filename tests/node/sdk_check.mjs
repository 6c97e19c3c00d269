// Runs AIGNE's own client SDK (@aigne/aigne-hub, pinned in package.json), unmodified, against
// a hubproxy at HUB_URL with HUB_KEY: only `baseURL` and `apiKey` are given. Prints one JSON
// object with what each call returned; tests/test_aigne_sdk.py checks it.
import { AIGNEHubChatModel, AIGNEHubImageModel } from "@aigne/aigne-hub";

const baseURL = process.env.HUB_URL;
const apiKey = process.env.HUB_KEY;
const out = {};

const chat = new AIGNEHubChatModel({ baseURL, apiKey, model: process.env.CHAT_MODEL });
const whole = await chat.invoke({ messages: [{ role: "user", content: "hello sdk" }] });
out.whole = { text: whole.text, usage: whole.usage, model: whole.model };

const stream = await chat.invoke(
  { messages: [{ role: "user", content: "stream sdk" }] },
  { streaming: true },
);
let text = "";
let usage = null;
for await (const chunk of stream) {
  if (chunk.delta?.text?.text) text += chunk.delta.text.text;
  if (chunk.delta?.json?.usage) usage = chunk.delta.json.usage;
}
out.stream = { text, usage };

const painter = new AIGNEHubImageModel({ baseURL, apiKey, model: process.env.IMAGE_MODEL });
const image = await painter.invoke({ prompt: "a red fox", outputFileType: "file" });
out.image = {
  count: image.images.length,
  type: image.images[0].type,
  head: Buffer.from(image.images[0].data, "base64").subarray(0, 8).toString("hex"),
  usage: image.usage,
};

// The dispatcher's own models() reads the hub's URL from the environment only; the hub-backed
// client it made from `baseURL` lists them from there (after discovery, like every call).
out.models = (await chat.client.models()).map((m) => [m.provider, m.model, m.type,
  m.input_credits_per_token, m.output_credits_per_token]);
out.imageModels = (await painter.client.models()).map((m) => [m.provider, m.model, m.type]);
console.log(JSON.stringify(out));
