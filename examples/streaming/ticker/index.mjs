// Streams `count` server-sent events, one every `interval_ms` (both from the query string),
// then an `event: done`. Each event reaches the client as soon as it is written.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const int = (value, fallback, max) => {
  const n = Number.parseInt(value ?? "", 10);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, max) : fallback;
};

export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const query = event.queryStringParameters ?? {};
  const count = int(query.count, 5, 100);
  const interval = int(query.interval_ms, 1000, 5000);
  const out = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 200,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
  for (let i = 1; i <= count; i++) {
    out.write(`id: ${i}\ndata: ${JSON.stringify({ tick: i, at: new Date().toISOString() })}\n\n`);
    if (i < count) await sleep(interval);
  }
  out.write("event: done\ndata: {}\n\n");
  out.end();
});
