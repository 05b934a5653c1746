// Flow control for the Python path, shared by the pad and the slider panel.
//
// Each value sent is numbered; Python echoes the last number it handled as `data.ack`, which the
// component passes to `settle`. At most `maxInFlight` values are unanswered at once; while that
// many are, a new value waits in `pending`, replacing any older waiting one (the newest wins).
// `post(msg, seq)` does the sending (setStateValue).
//
// A lost rerun must not freeze the component: each send (re)starts a timer of `timeoutMs`; if it
// fires before every value in flight is acknowledged, the sender forgets them all (they are not
// sent again) and sends the waiting value, if there is one.

class Sender {
  constructor(post, { maxInFlight = 1, timeoutMs = 1500, onSend = null } = {}) {
    this.post = post;
    this.maxInFlight = maxInFlight;
    this.timeoutMs = timeoutMs;
    this.onSend = onSend;
    this.seq = 0;
    this.inFlight = []; // seq numbers sent and not yet acknowledged, oldest first
    this.pending = null;
    this.sends = 0;
    this.timer = null;
  }

  get busy() {
    return this.inFlight.length > 0 || this.pending !== null;
  }

  send(msg) {
    if (this.inFlight.length >= this.maxInFlight) {
      this.pending = msg;
      return;
    }
    this.pending = null;
    this.seq += 1;
    this.inFlight.push(this.seq);
    this.sends += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(Infinity), this.timeoutMs);
    if (this.onSend) this.onSend(this.sends);
    this.post(msg, this.seq);
  }

  // Python handled everything up to `ack` (null/undefined: it answered without handling any).
  settle(ack) {
    const a = ack === null || ack === undefined ? Infinity : ack;
    if (Number.isFinite(a) && a > this.seq) this.seq = a; // a new instance continues the numbering
    const before = this.inFlight.length;
    this.inFlight = this.inFlight.filter((q) => q > a);
    if (this.inFlight.length === 0) clearTimeout(this.timer);
    if (this.inFlight.length < before && this.pending) {
      const p = this.pending;
      this.pending = null;
      this.send(p);
    }
  }

  drop() {
    this.pending = null;
  }

  dispose() {
    clearTimeout(this.timer);
  }
}
