// The openai SDK as an agent runs it, over https: started by tls.test.mjs with
// NODE_EXTRA_CA_CERTS naming the test CA (the SDK's own fetch then trusts it, unchanged).
// Usage: node tls_sdk_client.mjs BASE_URL API_KEY PROMPT; prints one JSON line.
import OpenAI from 'openai';

const [baseURL, apiKey, prompt] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const messages = [{ role: 'user', content: prompt }];
const out = {};
try {
  const plain = await client.chat.completions.create({ model: 'autoglm-phone', messages });
  out.plain = plain.choices[0].message.content;
  const stream = await client.chat.completions.create({ model: 'autoglm-phone', messages, stream: true });
  out.streamed = '';
  for await (const chunk of stream) out.streamed += chunk.choices[0]?.delta?.content ?? '';
} catch (e) {
  out.error = { status: e.status ?? null, message: String(e.message), cause: String(e.cause?.code ?? '') };
}
console.log(JSON.stringify(out));
