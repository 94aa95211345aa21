// The hlsforge web app: sign in, upload, follow transcodes live, play the result.
//
// No framework and no build step. hls.js (`Hls`) and socket.io-client (`io`) are loaded
// before this script from /vendor/, installed from npm by `make setup`. Everything a user
// or the server wrote reaches the page through `textContent` or attributes, never as HTML.
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "hlsforge.token";
  const PART_CONCURRENCY = 3;   // multipart: parts in flight at once
  const PART_ATTEMPTS = 3;      // tries per part before the upload pauses for a resume
  const URL_BATCH = 20;         // part URLs asked for at once (the API allows 100)
  // Video phases, event names and content types: the API's contract, from /contract.js (loaded
  // first). `finished`, `ended` (with a reason; a retry may run them again) and
  // `beforeTranscoding` group the phases; a video plays in a `playable` phase, or in a
  // `playableOnceStarted` one once it has a `playableAt` (its start plays while the rest encodes).
  const CONTRACT = window.HLSFORGE_CONTRACT;
  const { finished: FINISHED, ended: ENDED, beforeTranscoding: BEFORE_TRANSCODING } = CONTRACT;
  const { playable: PLAYABLE, playableOnceStarted: PLAYABLE_ONCE_STARTED } = CONTRACT;
  const LABELS = { awaiting_upload: "Awaiting upload", succeeded: "Ready" };  // else capitalised
  const SESSION_RETRY_MS = [2000, 5000, 10000, 30000];  // /auth/me failed, not with a 401

  const $ = (id) => document.getElementById(id);

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    user: null,
    socket: null,
    videos: new Map(),   // id -> {video, el, live: {rendition: percent}}
    upload: null,        // the upload in progress or paused: {file, video, upload, attempt}
    player: null,        // {hls} while the player view is open
    waitingFor: null,    // the video the player view shows that cannot play yet: starts once it can
    playerRequest: 0,    // bumped whenever the player closes: a slower openPlayer gives up
    listRequest: 0,
    sessionRetry: null,  // the timer of the next /auth/me after a failure that was not a 401
    sessionAttempt: 0,
    unknown: new Set(),  // video ids seen in events but not in the list: fetched once
  };

  // --- errors and messages ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** The API's `detail`: a sentence, or FastAPI's list of validation errors. */
  function detailMessage(body, status) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${item.msg}` : String(item.msg);
      }).join("; ");
    }
    return `the server answered ${status}`;
  }

  function showText(id, text) {
    const el = $(id);
    el.textContent = text || "";
    el.hidden = !text;
  }

  function notice(text) {
    showText("live-status", text);
  }

  // --- the API -----------------------------------------------------------------------------

  async function api(path, { method = "GET", body } = {}) {
    const headers = {};
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let payload;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, { method, headers, body: payload });
    } catch {
      throw new ApiError(0, "Cannot reach the server. Check your connection and try again.");
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      if (response.status === 401 && state.token) signOut("Your session has ended; sign in again.");
      throw new ApiError(response.status, detailMessage(data, response.status));
    }
    return data;
  }

  // --- signing in --------------------------------------------------------------------------

  async function onAuthSubmit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const signup = event.submitter && event.submitter.value === "signup";
    const email = $("auth-email").value.trim();
    const password = $("auth-password").value;
    const name = $("auth-name").value.trim();
    showText("auth-error", "");
    if (!email || !password) {
      showText("auth-error", "Enter your email and password.");
      return;
    }
    setBusy(form, true);
    try {
      if (signup) {
        await api("/auth/register", { method: "POST", body: name ? { email, password, name } : { email, password } });
      }
      const token = await api("/auth/login", { method: "POST", body: { email, password } });
      state.token = token.access_token;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $("auth-password").value = "";
      await startSession();
    } catch (error) {
      showText("auth-error", error.message);
    } finally {
      setBusy(form, false);
    }
  }

  async function startSession() {
    state.user = await api("/auth/me");
    state.sessionAttempt = 0;
    notice("");
    $("session-user").textContent = state.user.name || state.user.email;
    $("session").hidden = false;
    connectLive();
    route();
  }

  /** On page load: a 401 has signed out already; anything else keeps the token and retries. */
  function resumeSession() {
    state.sessionRetry = null;
    startSession().catch((error) => {
      if (!state.token || (error instanceof ApiError && error.status === 401)) return;
      const delay = SESSION_RETRY_MS[Math.min(state.sessionAttempt, SESSION_RETRY_MS.length - 1)];
      state.sessionAttempt += 1;
      const reason = String(error.message || error).replace(/\.$/, "");
      notice(`Could not load your account (${reason}); trying again in ${delay / 1000} s…`);
      $("session").hidden = false;  // "Sign out" stays at hand meanwhile
      state.sessionRetry = setTimeout(resumeSession, delay);
    });
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(state.sessionRetry);
    state.sessionRetry = null;
    state.token = null;
    state.user = null;
    if (state.socket) {
      state.socket.disconnect();
      state.socket = null;
    }
    closePlayer();
    state.videos.clear();
    state.upload = null;
    $("video-list").replaceChildren();
    $("session").hidden = true;
    notice("");
    route();
    showText("auth-error", message || "");
  }

  function setBusy(form, busy) {
    for (const button of form.querySelectorAll("button")) button.disabled = busy;
    form.setAttribute("aria-busy", String(busy));
  }

  // --- live updates --------------------------------------------------------------------------

  function connectLive() {
    if (typeof window.io !== "function") {
      notice("Live progress is unavailable: socket.io-client did not load (run `make setup`).");
      loadVideos();
      return;
    }
    // WebSocket only: HTTP long-polling would need every request of a session to reach the
    // same API replica (sticky sessions) behind a round-robin Service.
    const socket = window.io({ auth: { token: state.token }, transports: ["websocket"] });
    state.socket = socket;
    socket.on("connect", () => {
      notice("");
      loadVideos();  // once per (re)connect: whatever happened while we were away
    });
    socket.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") notice("Live progress paused; reconnecting…");
    });
    socket.on("connect_error", (error) => {
      if (error && error.message === "unauthorized") {
        signOut("Your session has ended; sign in again.");
      } else if (!socket.active) {
        notice("Live progress is unavailable; reload the page to try again.");
      } else {
        notice("Live progress paused; reconnecting…");
      }
    });
    socket.on(CONTRACT.events.progress, onProgressEvent);
    socket.on(CONTRACT.events.phase, onPhaseEvent);
    socket.on(CONTRACT.events.playable, onPlayableEvent);
    for (const [name, phase] of Object.entries(CONTRACT.endingEvents)) {
      socket.on(name, (event) => onPhaseEvent({ ...event, phase }));
    }
  }

  async function loadVideos() {
    const request = ++state.listRequest;
    try {
      const page = await api("/videos?pageSize=100");
      if (request !== state.listRequest || !state.token) return;
      const seen = new Set();
      for (const video of page.items) {
        seen.add(video.id);
        renderVideo(video);
      }
      for (const [id, entry] of state.videos) {
        if (!seen.has(id)) {
          entry.el.remove();
          state.videos.delete(id);
        }
      }
      orderVideos(page.items.map((video) => video.id));
      $("videos-empty").hidden = state.videos.size > 0;
    } catch (error) {
      notice(`Could not load your videos: ${error.message}`);
    }
  }

  function known(event) {
    if (!event || typeof event.videoId !== "string") return null;
    const entry = state.videos.get(event.videoId);
    if (!entry && !state.unknown.has(event.videoId)) {
      state.unknown.add(event.videoId);
      loadVideos();  // uploaded elsewhere: fetch the list once
    }
    return entry || null;
  }

  function onProgressEvent(event) {
    const entry = known(event);
    if (!entry || typeof event.rendition !== "string") return;
    const percent = clampPercent(event.percent);
    entry.live[event.rendition] = Math.max(entry.live[event.rendition] || 0, percent);
    const phase = entry.video.phase;
    if (BEFORE_TRANSCODING.includes(phase)) renderVideo({ ...entry.video, phase: "transcoding" });
    if (!FINISHED.includes(phase)) {
      renderRendition(entry, { name: event.rendition, phase: "Running", progress: percent });
    }
  }

  function onPhaseEvent(event) {
    const entry = known(event);
    if (!entry || typeof event.phase !== "string") return;
    const phase = event.phase.toLowerCase();
    const video = {
      ...entry.video,
      phase: isPhase(phase) ? phase : entry.video.phase,
      progress: typeof event.progress === "number" ? event.progress : entry.video.progress,
      renditions: Array.isArray(event.renditions) ? event.renditions : entry.video.renditions,
    };
    if (ENDED.includes(phase)) video.error = typeof event.message === "string" ? event.message : video.error;
    renderVideo(video);
  }

  /** The start of the video plays while the rest encodes: the state, and since when. */
  function onPlayableEvent(event) {
    if (!known(event) || typeof event.playableAt !== "string") return;
    onPhaseEvent(event);
    const entry = state.videos.get(event.videoId);
    renderVideo({ ...entry.video, playableAt: event.playableAt });
  }

  // --- the list of videos ----------------------------------------------------------------------

  /** Whether the video plays now: once succeeded, or from its `playableAt` on while it encodes. */
  function isPlayable(video) {
    return PLAYABLE.includes(video.phase)
      || (typeof video.playableAt === "string" && PLAYABLE_ONCE_STARTED.includes(video.phase));
  }

  function isPhase(phase) {
    return CONTRACT.phases.includes(phase);
  }

  function phaseLabel(phase) {
    if (!isPhase(phase)) return phase;
    return LABELS[phase] || phase.charAt(0).toUpperCase() + phase.slice(1);
  }

  function clampPercent(value) {
    const number = Number(value);
    return Number.isFinite(number) ? Math.min(100, Math.max(0, number)) : 0;
  }

  function entryFor(video) {
    let entry = state.videos.get(video.id);
    if (entry) return entry;
    const el = $("video-item-template").content.firstElementChild.cloneNode(true);
    el.dataset.videoId = video.id;
    el.querySelector("[data-testid=delete]").addEventListener("click", () => deleteVideo(video.id));
    el.querySelector("[data-testid=cancel]").addEventListener("click", () => control(video.id, "cancel"));
    el.querySelector("[data-testid=retry]").addEventListener("click", () => control(video.id, "retry"));
    entry = { video, el, live: {} };
    state.videos.set(video.id, entry);
    $("video-list").prepend(el);
    $("videos-empty").hidden = true;
    return entry;
  }

  function orderVideos(ids) {
    const list = $("video-list");
    for (const id of ids) {
      const entry = state.videos.get(id);
      if (entry) list.append(entry.el);
    }
  }

  function renderVideo(video) {
    const entry = entryFor(video);
    const finished = FINISHED.includes(video.phase);
    const changed = entry.video.phase !== video.phase;
    if (changed && video.phase === "succeeded") entry.live = {};
    entry.video = video;
    const el = entry.el;
    el.dataset.phase = video.phase;
    el.querySelector("[data-testid=video-title]").textContent = video.title;
    const badge = el.querySelector("[data-testid=video-phase]");
    badge.textContent = phaseLabel(video.phase);
    badge.className = `phase phase-${isPhase(video.phase) ? video.phase : "unknown"}`;
    const overall = el.querySelector("[data-testid=video-progress]");
    overall.hidden = finished;
    overall.setAttribute("aria-label", `${video.title}: overall progress`);
    for (const rendition of video.renditions || []) renderRendition(entry, rendition);
    renderOverall(entry);
    const ended = ENDED.includes(video.phase);
    const reason = video.error || (video.phase === "failed" ? "The transcode failed." : "");
    showErrorIn(el.querySelector("[data-testid=video-error]"), ended ? reason : "");
    const cancel = el.querySelector("[data-testid=cancel]");
    const retry = el.querySelector("[data-testid=retry]");
    cancel.hidden = finished || video.phase === "awaiting_upload";
    retry.hidden = !ended;
    if (changed) cancel.disabled = retry.disabled = false;  // the operator has acted
    const play = el.querySelector("[data-testid=play]");
    const playable = isPlayable(video);
    const early = playable && video.phase !== "succeeded";
    play.hidden = !playable;
    play.textContent = early ? "Play (still encoding)" : "Play";
    play.href = `#/watch/${encodeURIComponent(video.id)}`;
    play.setAttribute("aria-label", `Play ${video.title}${early ? " while it encodes" : ""}`);
    if (playable && state.waitingFor === video.id) openPlayer(video.id);  // the open player starts
  }

  function showErrorIn(el, text) {
    el.textContent = text || "";
    el.hidden = !text;
  }

  function renderRendition(entry, rendition) {
    if (!rendition || typeof rendition.name !== "string") return;
    const list = entry.el.querySelector("[data-testid=renditions]");
    let item = [...list.children].find((child) => child.dataset.rendition === rendition.name);
    if (!item) {
      item = $("rendition-template").content.firstElementChild.cloneNode(true);
      item.dataset.rendition = rendition.name;
      item.querySelector("[data-testid=rendition-name]").textContent = rendition.name;
      item.querySelector("progress").setAttribute("aria-label", `${rendition.name} progress`);
      list.append(item);
    }
    const phase = typeof rendition.phase === "string" ? rendition.phase.toLowerCase() : "pending";
    let percent = clampPercent(rendition.progress);
    if (phase === "succeeded") percent = 100;
    else percent = Math.max(percent, entry.live[rendition.name] || 0);
    item.dataset.phase = phase;
    item.querySelector("progress").value = percent;
    const words = { succeeded: "done", failed: "failed", cancelled: "cancelled" };
    let label = words[phase] || `${Math.floor(percent)}%`;
    if (!words[phase] && Number.isInteger(rendition.slices) && rendition.slices > 1) {
      label += ` · ${rendition.slicesDone || 0}/${rendition.slices} slices`;
    }
    item.querySelector("[data-testid=rendition-percent]").textContent = label;
    renderOverall(entry);
  }

  /** The operator's overall progress, or the renditions' average when that is ahead. */
  function renderOverall(entry) {
    const bars = [...entry.el.querySelectorAll("[data-testid=rendition-progress]")];
    const average = bars.length ? bars.reduce((sum, bar) => sum + bar.value, 0) / bars.length : 0;
    const server = entry.video.phase === "succeeded" ? 100 : clampPercent(entry.video.progress);
    entry.el.querySelector("[data-testid=video-progress]").value = Math.max(server, average);
  }

  /** Cancel or retry: the operator acts, and its events update the video. */
  async function control(id, action) {
    const entry = state.videos.get(id);
    if (!entry) return;
    const button = entry.el.querySelector(`[data-testid=${action}]`);
    button.disabled = true;
    try {
      await api(`/videos/${encodeURIComponent(id)}/${action}`, { method: "POST" });
      if (action === "retry") {  // rungs that run again start from nothing, and so does playback
        entry.live = {};
        entry.video = { ...entry.video, playableAt: null };
      }
    } catch (error) {
      button.disabled = false;
      showErrorIn(entry.el.querySelector("[data-testid=video-error]"), `Could not ${action}: ${error.message}`);
    }
  }

  async function deleteVideo(id) {
    const entry = state.videos.get(id);
    if (!entry || !window.confirm(`Delete “${entry.video.title}”? This cannot be undone.`)) return;
    try {
      await api(`/videos/${encodeURIComponent(id)}`, { method: "DELETE" });
      entry.el.remove();
      state.videos.delete(id);
      $("videos-empty").hidden = state.videos.size > 0;
    } catch (error) {
      showErrorIn(entry.el.querySelector("[data-testid=video-error]"), `Could not delete: ${error.message}`);
    }
  }

  // --- uploading --------------------------------------------------------------------------------

  /** Storage refused or lost a request: the upload can be tried again (or resumed). */
  class UploadError extends Error {}

  function contentTypeOf(file) {
    // The contract's table first: the browser's guess comes from the system and is often wrong
    // for video (`.ts` as Qt Linguist, `.3gp` as audio).
    const extension = file.name.includes(".") ? `.${file.name.split(".").pop().toLowerCase()}` : "";
    return CONTRACT.sourceContentTypes[extension] || file.type || "application/octet-stream";
  }

  /** S3 answers errors as XML: its <Message>, read as text. */
  function s3Message(xhr) {
    try {
      const doc = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
      const message = doc.querySelector("Message");
      if (message && message.textContent) return message.textContent;
    } catch {
      // not XML
    }
    return `storage answered ${xhr.status}`;
  }

  /** Send with XMLHttpRequest, the one browser API that reports upload progress. */
  function send(method, url, body, onProgress, active = new Set()) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      active.add(xhr);
      xhr.addEventListener("loadend", () => active.delete(xhr));
      xhr.open(method, url);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded, event.total);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
        else reject(new UploadError(`The upload was refused: ${s3Message(xhr)}`));
      });
      xhr.addEventListener("error", () => reject(new UploadError("The upload was interrupted (network error).")));
      xhr.addEventListener("abort", () => reject(new UploadError("The upload was aborted.")));
      xhr.send(body);
    });
  }

  function setUploadProgress(percent, status) {
    $("upload-progress").value = clampPercent(percent);
    if (status !== undefined) $("upload-status").textContent = status;
  }

  async function onUploadSubmit(event) {
    event.preventDefault();
    const file = $("file-input").files[0];
    state.upload = null;  // a new file replaces a paused upload (its video stays listed)
    showText("upload-error", "");
    if (!file) {
      showText("upload-error", "Choose a video file first.");
      return;
    }
    const title = $("upload-title-input").value.trim() || file.name.replace(/\.[^.]*$/, "") || file.name;
    setBusy($("upload-form"), true);
    $("upload-retry").hidden = true;
    $("upload-panel").hidden = false;
    $("upload-label").textContent = `Uploading ${file.name}`;
    setUploadProgress(0, "Starting…");
    try {
      const created = await api("/videos", {
        method: "POST",
        body: { title, filename: file.name, contentType: contentTypeOf(file), size: file.size },
      });
      renderVideo(created.video);
      state.upload = { file, video: created.video, upload: created.upload, attempt: 0 };
      await runUpload();
    } catch (error) {
      uploadFailed(error);
    }
  }

  async function runUpload() {
    const job = state.upload;
    setBusy($("upload-form"), true);
    $("upload-retry").hidden = true;
    showText("upload-error", "");
    try {
      if (job.upload.method === "multipart") await multipartUpload(job);
      else await postUpload(job);
      setUploadProgress(100, "Checking the file…");
      const video = await api(`/videos/${job.video.id}/complete`, { method: "POST" });
      state.upload = null;
      renderVideo(video);
      $("upload-label").textContent = `Uploaded ${job.file.name}`;
      setUploadProgress(100, "Transcoding starts shortly; follow it below.");
      $("upload-form").reset();
      setBusy($("upload-form"), false);
    } catch (error) {
      uploadFailed(error);
    }
  }

  function uploadFailed(error) {
    const job = state.upload;
    setBusy($("upload-form"), false);
    $("part-list").replaceChildren();
    const rejected = error instanceof ApiError && error.status === 422;
    const resumable = Boolean(job) && !rejected;
    showText("upload-error", rejected ? `The file was rejected: ${error.message}` : error.message);
    $("upload-status").textContent = rejected ? "Rejected." : resumable ? "Paused." : "";
    if (job) $("upload-label").textContent = `${rejected ? "Rejected" : "Uploading"} ${job.file.name}`;
    $("upload-retry").hidden = !resumable;
    $("upload-retry").textContent = job && job.upload.method === "multipart" ? "Resume upload" : "Try again";
    if (!resumable) state.upload = null;
    if (job) refreshVideo(job.video.id);
  }

  async function refreshVideo(id) {
    try {
      renderVideo(await api(`/videos/${encodeURIComponent(id)}`));
    } catch {
      // the list refreshes on the next reconnect
    }
  }

  function onRetry() {
    if (!state.upload) return;
    state.upload.attempt += 1;
    runUpload();
  }

  /** A single form POST straight to storage; the policy pins key, size and type. */
  async function postUpload(job) {
    const form = new FormData();
    for (const [name, value] of Object.entries(job.upload.fields)) form.append(name, value);
    form.append("file", job.file);
    setUploadProgress(0, "Uploading…");
    await send("POST", job.upload.url, form, (loaded, total) => {
      setUploadProgress((loaded / total) * 100, `Uploading… ${formatBytes(Math.min(loaded, job.file.size))} of ${formatBytes(job.file.size)}`);
    });
  }

  /** Parts PUT to presigned URLs, a few at once; a retry skips the parts storage already has,
   * and everything when storage has assembled them already (only the video's complete is left). */
  async function multipartUpload(job) {
    const { partSize, partCount } = job.upload;
    const size = job.file.size;
    const partLength = (number) => Math.min(partSize, size - (number - 1) * partSize);
    const done = new Set();
    if (job.attempt > 0) {
      setUploadProgress($("upload-progress").value, "Asking which parts arrived…");
      const have = await api(`/videos/${job.video.id}/upload/parts`);
      if (have.completed) return;
      for (const part of have.parts) {
        if (part.size === null || part.size === undefined || part.size === partLength(part.partNumber)) {
          done.add(part.partNumber);
        }
      }
    }
    const queue = [];
    for (let number = 1; number <= partCount; number += 1) if (!done.has(number)) queue.push(number);
    let bytesDone = [...done].reduce((sum, number) => sum + partLength(number), 0);
    const inFlight = new Map();  // part number -> bytes sent
    const urls = new Map();
    const report = () => {
      const sent = bytesDone + [...inFlight.values()].reduce((a, b) => a + b, 0);
      setUploadProgress((sent / size) * 100,
        `Uploading… ${formatBytes(sent)} of ${formatBytes(size)} (${done.size} of ${partCount} parts)`);
    };
    report();

    async function urlFor(number) {
      if (!urls.has(number)) {
        const batch = [number, ...queue.slice(0, URL_BATCH - 1)];
        const answer = await api(`/videos/${job.video.id}/upload/parts`, { method: "POST", body: { partNumbers: batch } });
        for (const part of answer.parts) urls.set(part.partNumber, part.url);
      }
      return urls.get(number);
    }

    const active = new Set();  // XMLHttpRequests in flight, aborted when one part gives up
    let failure = null;

    async function uploadPart(number) {
      const start = (number - 1) * partSize;
      const blob = job.file.slice(start, start + partLength(number));
      const item = document.createElement("li");
      item.dataset.part = String(number);
      const label = document.createElement("span");
      label.textContent = `Part ${number} of ${partCount}`;
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.dataset.testid = "part-progress";
      bar.setAttribute("aria-label", `Part ${number} progress`);
      item.append(label, bar);
      $("part-list").append(item);
      try {
        for (let attempt = 1; ; attempt += 1) {
          try {
            await send("PUT", await urlFor(number), blob, (loaded) => {
              inFlight.set(number, loaded);
              bar.value = (loaded / blob.size) * 100;
              report();
            }, active);
            break;
          } catch (error) {
            inFlight.delete(number);
            urls.delete(number);  // a fresh URL for the next try
            if (failure || attempt >= PART_ATTEMPTS || !(error instanceof UploadError)) throw error;
            await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
          }
        }
      } finally {
        item.remove();
      }
      inFlight.delete(number);
      done.add(number);
      bytesDone += blob.size;
      report();
    }

    async function worker() {
      while (queue.length && !failure) {
        const number = queue.shift();
        try {
          await uploadPart(number);
        } catch (error) {
          if (!failure) {
            failure = error;
            queue.length = 0;
            for (const xhr of active) xhr.abort();
          }
        }
      }
    }

    await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, queue.length) }, worker));
    if (failure) {
      const arrived = `${done.size} of ${partCount} parts arrived; resume to send the rest.`;
      throw failure instanceof UploadError ? new UploadError(`${failure.message} ${arrived}`) : failure;
    }
    // ETags from storage itself: a browser may not see them (CORS hides response headers).
    setUploadProgress(100, "Assembling the parts…");
    const have = await api(`/videos/${job.video.id}/upload/parts`);
    if (have.completed) return;
    const parts = have.parts
      .filter((part) => part.partNumber <= partCount)
      .sort((a, b) => a.partNumber - b.partNumber)
      .map((part) => ({ partNumber: part.partNumber, etag: part.etag }));
    if (parts.length !== partCount) {
      throw new UploadError(`Storage has ${parts.length} of ${partCount} parts; resume to send the rest.`);
    }
    await api(`/videos/${job.video.id}/upload/complete`, { method: "POST", body: { parts } });
  }

  function formatBytes(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  // --- the player ---------------------------------------------------------------------------------

  function closePlayer() {
    state.playerRequest += 1;  // an openPlayer still waiting for the API is stale now
    if (state.player && state.player.hls) state.player.hls.destroy();
    state.player = null;
    state.waitingFor = null;
    window.hlsforgePlayer = null;
    const video = $("player");
    video.removeAttribute("src");
    video.removeAttribute("poster");
    video.load();
    const select = $("quality-select");
    select.replaceChildren(new Option("Auto", "-1"));
    select.disabled = true;
    $("audio-select").replaceChildren();
    $("audio-control").hidden = true;
    $("player-level").textContent = "";
    showText("player-error", "");
  }

  function levelLabel(level) {
    const height = level.height ? `${level.height}p` : level.name || "?";
    return level.bitrate ? `${height} (${Math.round(level.bitrate / 1000)} kbit/s)` : height;
  }

  function audioLabel(track, index) {
    const name = track.name || `Track ${index + 1}`;
    return track.lang && track.lang !== name ? `${name} (${track.lang})` : name;
  }

  /** The audio tracks of the playing variant's group: a choice only when there are several. */
  function renderAudioTracks(hls) {
    const tracks = hls.audioTracks || [];
    const select = $("audio-select");
    select.replaceChildren(...tracks.map((track, index) => new Option(audioLabel(track, index), String(index))));
    if (hls.audioTrack >= 0) select.value = String(hls.audioTrack);
    $("audio-control").hidden = tracks.length < 2;
  }

  /** Only the latest call plays: another route (a new hash, "back", signing out) closes the
   * player, which makes an earlier call that is still waiting for the API give up. */
  async function openPlayer(id) {
    closePlayer();
    const request = state.playerRequest;
    const stale = () => request !== state.playerRequest;
    const title = $("player-title");
    title.textContent = "";
    let video;
    let playback;
    try {
      video = state.videos.has(id) ? state.videos.get(id).video : await api(`/videos/${encodeURIComponent(id)}`);
      if (stale()) return;
      title.textContent = video.title;
      if (!isPlayable(video)) {
        showText("player-error", `This video is not ready to play yet (${phaseLabel(video.phase)}); it starts as soon as it can.`);
        state.waitingFor = id;
        return;
      }
      playback = await api(`/videos/${encodeURIComponent(id)}/playback`);
      if (stale()) return;
    } catch (error) {
      if (!stale()) showText("player-error", error.message);
      return;
    }
    if (state.player && state.player.hls) state.player.hls.destroy();  // never two at once
    const element = $("player");
    element.muted = true;  // browsers let muted videos start on their own
    if (playback.posterUrl) element.poster = playback.posterUrl;
    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      // From the start, also while the media playlists are still growing EVENT playlists (hls.js
      // would start those at the live edge): they grow as the rest encodes, then end.
      const hls = new Hls({ enableWorker: true, startPosition: 0 });
      state.player = { hls };
      window.hlsforgePlayer = { hls, video: element };
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        const select = $("quality-select");
        const options = hls.levels
          .map((level, index) => ({ level, index }))
          .sort((a, b) => (b.level.height || 0) - (a.level.height || 0))
          .map(({ level, index }) => new Option(levelLabel(level), String(index)));
        select.replaceChildren(new Option("Auto", "-1"), ...options);
        select.value = "-1";
        select.disabled = hls.levels.length < 2;
        element.play().catch(() => {});  // a blocked autoplay leaves the controls to the user
      });
      hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => renderAudioTracks(hls));
      hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, () => {
        if (hls.audioTrack >= 0) $("audio-select").value = String(hls.audioTrack);
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
        const level = hls.levels[data.level];
        if (level) $("player-level").textContent = `Playing ${levelLabel(level)}${hls.autoLevelEnabled ? " (auto)" : ""}`;
      });
      let recovered = false;
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
          recovered = true;
          hls.recoverMediaError();
          return;
        }
        showText("player-error", `Playback failed: ${data.details || data.type}.`);
        hls.destroy();
        if (state.player && state.player.hls === hls) state.player = null;
      });
      hls.loadSource(playback.masterUrl);
      hls.attachMedia(element);
    } else if (element.canPlayType(CONTRACT.hlsPlaylistType)) {
      element.src = playback.masterUrl;  // Safari plays HLS itself and picks the quality
      // From the start, not the live edge, while the playlists still grow.
      element.addEventListener("loadedmetadata", () => { element.currentTime = 0; }, { once: true });
      element.play().catch(() => {});
    } else {
      showText("player-error", "This browser cannot play HLS (it lacks Media Source Extensions).");
    }
  }

  function onQualityChange(event) {
    if (!state.player || !state.player.hls) return;
    state.player.hls.currentLevel = Number(event.target.value);  // -1: automatic
  }

  function onAudioChange(event) {
    if (!state.player || !state.player.hls) return;
    state.player.hls.audioTrack = Number(event.target.value);
  }

  // --- views ---------------------------------------------------------------------------------------

  function show(view) {
    for (const id of ["auth-view", "library-view", "player-view"]) $(id).hidden = id !== view;
  }

  function route() {
    if (!state.token) {
      closePlayer();
      show("auth-view");
      document.title = "Sign in · hlsforge";
      return;
    }
    const match = /^#\/watch\/([0-9a-f]{24})$/.exec(window.location.hash);
    if (match) {
      show("player-view");
      document.title = "Player · hlsforge";
      openPlayer(match[1]);
    } else {
      closePlayer();
      show("library-view");
      document.title = "My videos · hlsforge";
    }
  }

  function init() {
    $("auth-form").addEventListener("submit", onAuthSubmit);
    $("sign-out").addEventListener("click", () => signOut(""));
    $("upload-form").addEventListener("submit", onUploadSubmit);
    $("upload-retry").addEventListener("click", onRetry);
    $("quality-select").addEventListener("change", onQualityChange);
    $("audio-select").addEventListener("change", onAudioChange);
    window.addEventListener("hashchange", () => { if (state.token && state.user) route(); });
    if (state.token) {
      resumeSession();
    } else {
      route();
    }
  }

  init();
})();
