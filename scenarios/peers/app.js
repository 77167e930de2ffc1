// A tiny HTTP app for the PM2 recipe (README "Pointing it at your own server"):
// every answer names the process that served it (X-Worker-Pid). PM2 runs it in
// cluster mode: `pm2 start app.js -i 2`. The port comes from $PORT.
const http = require('http');

const port = Number(process.env.PORT || 3000);
http
  .createServer((req, res) => {
    res.setHeader('X-Worker-Pid', String(process.pid));
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ path: req.url, pid: process.pid }));
  })
  .listen(port, '127.0.0.1');
