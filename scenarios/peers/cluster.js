// The Node.js cluster recipe (README "Pointing it at your own server"): the primary
// writes its PID to $PIDFILE and forks $WORKERS workers that share $PORT; a worker that
// dies is replaced. SIGHUP is the deploy: a rolling restart, one worker at a time (a
// new one forked and listening before the old one is disconnected, so it finishes
// what it was answering). SIGTERM or SIGINT stops everything gracefully.
const cluster = require('cluster');
const fs = require('fs');
const http = require('http');

const port = Number(process.env.PORT || 3000);

if (cluster.isPrimary) {
  const size = Number(process.env.WORKERS || 2);
  let rolling = false;
  let stopping = false;
  const retiring = new Set();

  const fork = () =>
    new Promise((resolve) => {
      const worker = cluster.fork();
      worker.once('listening', () => resolve(worker));
    });

  cluster.on('exit', (worker) => {
    // A crash (not a worker we retired, not the stop): replace it.
    if (!stopping && !retiring.delete(worker.id)) fork();
  });

  process.on('SIGHUP', async () => {
    if (rolling || stopping) return;
    rolling = true;
    for (const old of Object.values(cluster.workers)) {
      await fork();
      retiring.add(old.id);
      await new Promise((resolve) => {
        old.once('exit', resolve);
        old.disconnect();
        // A connection that never goes idle must not hold the rollout for ever.
        setTimeout(() => old.process.kill('SIGKILL'), 10000).unref();
      });
    }
    rolling = false;
  });

  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.disconnect();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
    });
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  Promise.all(Array.from({ length: size }, fork)).then(() => {
    if (process.env.PIDFILE) {
      fs.writeFileSync(`${process.env.PIDFILE}.tmp`, `${process.pid}\n`);
      fs.renameSync(`${process.env.PIDFILE}.tmp`, process.env.PIDFILE);
    }
  });
} else {
  http
    .createServer((req, res) => {
      res.setHeader('X-Worker-Pid', String(process.pid));
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ path: req.url, pid: process.pid }));
    })
    .listen(port, '127.0.0.1');
}
