// AudioWorklet: microphone audio (any rate) -> low-pass filtered, downsampled 16 kHz PCM16 chunks.
// Posts {pcm: ArrayBuffer (Int16 little-endian), peak: number} every `chunkMs` of audio.

const TAPS = 63;

function lowPass(cutoff) {
  // Hann-windowed sinc, `cutoff` as a fraction of the input rate (0..0.5), unit DC gain.
  const h = new Float32Array(TAPS);
  const mid = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < TAPS; i++) h[i] /= sum;
  return h;
}

class Pcm16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.outRate = o.targetRate || 16000;
    this.step = sampleRate / this.outRate; // input samples per output sample
    this.filter = this.step > 1 ? lowPass((0.45 * this.outRate) / sampleRate) : null;
    this.ring = new Float32Array(8192);
    this.written = 0; // input samples received so far
    this.pos = (TAPS - 1) / 2; // next output position, in input samples
    this.chunk = new Int16Array(Math.round((this.outRate * (o.chunkMs || 100)) / 1000));
    this.fill = 0;
    this.peak = 0;
    this.port.onmessage = (e) => {
      if (e.data === "flush") this.post();
    };
  }

  sampleAt(n) {
    return this.ring[n & 8191];
  }

  output(value) {
    const v = Math.max(-1, Math.min(1, value));
    this.peak = Math.max(this.peak, Math.abs(v));
    this.chunk[this.fill++] = v < 0 ? v * 32768 : v * 32767;
    if (this.fill === this.chunk.length) this.post();
  }

  post() {
    if (this.fill === 0) return;
    const pcm = this.chunk.slice(0, this.fill).buffer;
    this.port.postMessage({ pcm, peak: this.peak }, [pcm]);
    this.fill = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let s = 0;
      for (let c = 0; c < input.length; c++) s += input[c][i];
      this.ring[(this.written + i) & 8191] = s / input.length;
    }
    this.written += frames;
    if (!this.filter) {
      for (; this.pos < this.written; this.pos += this.step) this.output(this.sampleAt(Math.floor(this.pos)));
      return true;
    }
    const half = (TAPS - 1) / 2;
    while (this.pos + half < this.written) {
      const centre = Math.round(this.pos);
      let acc = 0;
      for (let k = 0; k < TAPS; k++) acc += this.filter[k] * this.sampleAt(centre - half + k);
      this.output(acc);
      this.pos += this.step;
    }
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
