// Resumable upload (POST /v1/uploads, PUT chunks at offsets, :complete). A chunk whose request or
// answer is lost is not guessed at: the client asks the server how much it holds
// (GET /v1/uploads/{id}) and goes on from there, waiting for the network to come back.
import { api, ApiError, NetworkError } from "./api.js";

// The server says how large a chunk may be; smaller ones make progress visible and a retry cheap.
const MAX_CHUNK = 256 * 1024;

async function sha256Hex(file) {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function online() {
  return navigator.onLine ? Promise.resolve() : new Promise((r) => addEventListener("online", r, { once: true }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Upload one file; onProgress(sentBytes, totalBytes, note). Resolves to the media item. */
export async function uploadFile(file, onProgress) {
  const created = await api("/v1/uploads", { method: "POST", noRetry: true, body: {
    content_type: file.type || "application/octet-stream", size_bytes: file.size, sha256: await sha256Hex(file) } });
  const id = created.upload_id;
  const chunk = Math.min(Number(created.chunk_size) || MAX_CHUNK, MAX_CHUNK);
  let offset = Number(created.received_bytes || 0);
  let failures = 0;
  onProgress(offset, file.size, "");
  while (offset < file.size) {
    try {
      const r = await api(`/v1/uploads/${encodeURIComponent(id)}?offset=${offset}`, {
        method: "PUT", raw: file.slice(offset, offset + chunk), headers: { "content-type": "application/octet-stream" } });
      offset = Number(r.received_bytes);
      failures = 0;
      onProgress(offset, file.size, "");
    } catch (e) {
      if (e instanceof ApiError && e.reason === "UPLOAD_OFFSET_MISMATCH" && e.metadata.received_bytes !== undefined) {
        offset = Number(e.metadata.received_bytes);
        continue;
      }
      if (!(e instanceof NetworkError) && !(e instanceof ApiError && e.status >= 502)) throw e;
      failures += 1;
      onProgress(offset, file.size, "Connection lost: resuming…");
      await online();
      await sleep(Math.min(10_000, 300 * 2 ** Math.min(failures, 6)));
      try {
        offset = Number((await api(`/v1/uploads/${encodeURIComponent(id)}`)).received_bytes);
      } catch (again) {
        if (!(again instanceof NetworkError)) throw again;
      }
    }
  }
  onProgress(file.size, file.size, "Processing…");
  for (;;) {
    try {
      return await api(`/v1/uploads/${encodeURIComponent(id)}:complete`, { method: "POST", body: {} });
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      await online();
      await sleep(1000);
    }
  }
}
