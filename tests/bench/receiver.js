// A webhook receiver for tests/bench/fanout.sh: answers every POST 204 at once (keep-alive)
// and counts requests and distinct `webhook-id`s. `GET /count` tells the counts.
// Usage: node receiver.js PORT
const http = require("http");
let requests = 0;
const ids = new Set();
const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/count") {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ requests, distinct: ids.size }));
    return;
  }
  req.resume();
  req.on("end", () => {
    requests += 1;
    const id = req.headers["webhook-id"];
    if (id) ids.add(`${req.url} ${id}`);
    res.statusCode = 204;
    res.end();
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(process.argv[2]), "127.0.0.1");
