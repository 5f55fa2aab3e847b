// The display board: the snapshot, then the live stream read with fetch (EventSource cannot send
// the board's key), Last-Event-ID on every reconnect, a resync after a gateway restart. Every call
// is announced once in Bahasa Indonesia, queued so one never cuts off another, and remembered on
// the device so that a reload never repeats it.

import { ApiError, api, deviceKey, fill, element as h, pair } from "/web/api.js";
import { clock, setZone, t, translatePage } from "/web/i18n.js";

let key = deviceKey("board");
const agency = new URLSearchParams(location.search).get("agency");
const MISSED_WINDOW_MS = 10 * 60 * 1000; // calls older than this are shown, not spoken, after a gap
const SPOKEN_KEEP = 500;
const SILENCE_MS = 40_000; // the gateway sends a heartbeat every 15 s: longer silence is a dead link

const nowList = document.getElementById("now");
const recentList = document.getElementById("recent");
const staleSign = document.getElementById("stale");
const soundButton = document.getElementById("sound");

let counters = new Map(); // counter_id -> {name, call}
let recent = [];
let lastEventId = null;
let soundOn = localStorage.getItem("mpp.board.sound") === "on";

// -- what was already spoken, kept on the device ------------------------------------------------
const spoken = new Set(JSON.parse(localStorage.getItem("mpp.board.spoken") || "[]"));

function callKey(call) {
  const second = Math.floor(Date.parse(call.called_at) / 1000);
  return `${call.number}|${call.counter_id}|${second}`;
}

function remember(id) {
  spoken.add(id);
  const list = [...spoken].slice(-SPOKEN_KEEP);
  localStorage.setItem("mpp.board.spoken", JSON.stringify(list));
}

// -- voice: one utterance at a time, Indonesian voice or a chime --------------------------------
const speech = [];
let speaking = false;

function indonesianVoice() {
  const voices = window.speechSynthesis?.getVoices() || [];
  return voices.find((v) => v.lang === "id-ID") || voices.find((v) => v.lang?.startsWith("id"));
}

function chime() {
  return new Promise((resolve) => {
    try {
      const audio = new AudioContext();
      const tone = (frequency, start) => {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.frequency.value = frequency;
        gain.gain.setValueAtTime(0.25, audio.currentTime + start);
        gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + start + 0.6);
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + start);
        osc.stop(audio.currentTime + start + 0.6);
      };
      tone(880, 0);
      tone(660, 0.5);
      setTimeout(() => audio.close().then(resolve, resolve), 1200);
    } catch {
      resolve();
    }
  });
}

function say(text) {
  return new Promise((resolve) => {
    const voice = indonesianVoice();
    if (!voice || !window.speechSynthesis) {
      chime().then(resolve);
      return;
    }
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = "id-ID";
    utterance.voice = voice;
    utterance.rate = 0.9;
    utterance.onend = resolve;
    utterance.onerror = resolve;
    window.speechSynthesis.speak(utterance);
  });
}

async function drain() {
  if (speaking) return;
  speaking = true;
  while (speech.length) {
    const text = speech.shift();
    if (soundOn) await say(text);
  }
  speaking = false;
}

function announce(call) {
  const id = callKey(call);
  if (spoken.has(id)) return;
  remember(id);
  speech.push(call.spoken_announcement || call.announcement);
  drain();
}

// -- the board ----------------------------------------------------------------------------------
function render() {
  fill(nowList,
    ...[...counters.values()]
      .filter((c) => c.call)
      .sort((a, b) => Date.parse(b.call.called_at) - Date.parse(a.call.called_at))
      .map((c) =>
        h("li", { class: "call", "data-number": c.call.number },
          h("span", { class: "number" }, c.call.number),
          h("span", { class: "counter" }, c.name),
        ),
      ),
  );
  fill(recentList,
    ...recent.slice(0, 8).map((call) =>
      h("li", {},
        h("span", { class: "number" }, call.number),
        h("span", { class: "counter" }, call.counter_name || ""),
        h("span", { class: "time" }, clock(call.called_at)),
      ),
    ),
  );
}

function applyCall(call) {
  const counter = counters.get(call.counter_id) || { name: call.counter_name };
  counter.name = call.counter_name || counter.name;
  counter.call = call;
  counters.set(call.counter_id, counter);
  recent = [call, ...recent.filter((c) => callKey(c) !== callKey(call))].slice(0, 20);
  render();
}

async function loadSnapshot({ speakMissed }) {
  const query = agency ? `?agency=${encodeURIComponent(agency)}` : "";
  const snapshot = await api(`/v1/display${query}`, { key });
  counters = new Map(
    snapshot.counters.map((c) => [
      c.counter_id,
      { name: c.counter_name, call: c.current && { ...c.current, counter_id: c.counter_id, counter_name: c.counter_name } },
    ]),
  );
  recent = snapshot.recent_calls;
  render();
  const since = Date.now() - MISSED_WINDOW_MS;
  for (const call of [...snapshot.recent_calls].reverse()) {
    if (speakMissed && Date.parse(call.called_at) >= since) announce(call);
    else if (!spoken.has(callKey(call))) remember(callKey(call));
  }
}

// -- the live stream ----------------------------------------------------------------------------
function stale(yes) {
  staleSign.hidden = !yes;
  document.body.classList.toggle("is-stale", yes);
}

async function follow() {
  let delay = 1000;
  for (;;) {
    try {
      const headers = { Authorization: `Bearer ${key}`, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const query = agency ? `?agency=${encodeURIComponent(agency)}` : "";
      const link = new AbortController();
      const response = await fetch(`/v1/display/stream${query}`, {
        headers,
        cache: "no-store",
        signal: link.signal,
      });
      if (!response.ok || !response.body) throw new Error(`stream ${response.status}`);
      stale(false);
      delay = 1000;
      // nothing is missed between the first snapshot and the stream's first byte
      if (!lastEventId) await loadSnapshot({ speakMissed: true });
      await read(response.body, link);
    } catch {
      // fall through: reconnect
    }
    stale(true);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

async function read(body, link) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let watchdog = null;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => link.abort(), SILENCE_MS);
  };
  for (;;) {
    arm();
    let chunk;
    try {
      chunk = await reader.read();
    } finally {
      clearTimeout(watchdog);
    }
    const { value, done } = chunk;
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      await dispatch(block);
    }
  }
}

async function dispatch(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (id) lastEventId = id;
  if (event === "resync") {
    // the gateway no longer knows our last event (it restarted): the snapshot tells what we missed
    await loadSnapshot({ speakMissed: true });
  } else if (event === "ticket_called" || event === "ticket_recalled") {
    const call = JSON.parse(data.join("\n"));
    applyCall(call);
    announce(call);
  }
}

// -- start ----------------------------------------------------------------------------------------
function updateSoundButton() {
  soundButton.setAttribute("aria-pressed", String(soundOn));
  soundButton.classList.toggle("on", soundOn);
}

soundButton.addEventListener("click", () => {
  soundOn = true;
  localStorage.setItem("mpp.board.sound", "on");
  updateSoundButton();
  // the browser lets a page speak once a person has touched it: say something short now
  if (indonesianVoice()) say("Suara aktif");
  else chime();
});

async function start() {
  translatePage();
  updateSoundButton();
  const tick = () => (document.getElementById("clock").textContent = clock(new Date()));
  tick();
  setInterval(tick, 1000);
  if (!key) {
    key = await pair("board", document.getElementById("setup"), t);
  }
  for (;;) {
    try {
      setZone(await api("/v1/mall"));
      // a board that ran here before speaks what it missed while off; a new one starts silent
      await loadSnapshot({ speakMissed: spoken.size > 0 });
      break;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        // the key was revoked: forget it and pair again
        localStorage.removeItem("mpp.board.key");
        location.reload();
        return;
      }
      stale(true);
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
  follow();
}

start();
