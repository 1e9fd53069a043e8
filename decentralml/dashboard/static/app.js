// decentralml dashboard: follow chain events (server-sent events) and re-render the page body.
// No framework and no build step: the server renders HTML; this only swaps it in.
"use strict";
(function () {
  const live = document.getElementById("live");
  const last = document.getElementById("last-event");
  const content = document.getElementById("content");
  let pending = null;

  function state(name, text) {
    live.dataset.state = name;
    live.textContent = text;
  }

  async function refresh() {
    pending = null;
    const response = await fetch("/fragment", { cache: "no-store" });
    if (response.ok) {
      content.innerHTML = await response.text();
    }
  }

  const events = new EventSource("/events");
  events.onopen = () => state("live", "live");
  events.onerror = () => state("offline", "reconnecting…");
  events.addEventListener("chain", (message) => {
    const event = JSON.parse(message.data);
    last.textContent = `last event: ${event.kind} (task ${event.task_id}, block #${event.block_number})`;
    // one re-render for a burst of events
    if (pending === null) {
      pending = setTimeout(refresh, 150);
    }
  });
})();
