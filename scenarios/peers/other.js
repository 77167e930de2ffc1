// A second app under the same PM2 daemon, which the PM2 recipe must never hit: its
// workers are children of the daemon too, told apart by their command line.
const http = require('http');

http
  .createServer((req, res) => res.end('other\n'))
  .listen(Number(process.env.PORT || 3001), '127.0.0.1');
