// The console's shell: hash routes to pages, sign in and out, the connection banner.

import { onReachable, onUnauthorized, resumeSession, session } from "./api.js";
import { fill, h } from "./dom.js";
import * as sampler from "./sampler.js";
import { status as streamStatus } from "./stream.js";
import * as bans from "./pages/bans.js";
import * as calls from "./pages/calls.js";
import * as dashboard from "./pages/dashboard.js";
import * as location_ from "./pages/location.js";
import * as login from "./pages/login.js";
import * as logs from "./pages/logs.js";
import * as registry from "./pages/registry.js";
import * as resources from "./pages/resources.js";
import * as system from "./pages/system.js";

const resource = (plural) => (main) => resources.render(main, plural);
const ROUTES = {
  dashboard: ["Dashboard", dashboard.render],
  domains: ["Domains", resource("domains")],
  agents: ["Agents", resource("agents")],
  peers: ["Peers", resource("peers")],
  gateways: ["Gateways", resource("gateways")],
  numbers: ["Numbers", resource("numbers")],
  users: ["Users", resource("users")],
  location: ["Location", location_.render],
  calls: ["Calls", calls.render],
  registry: ["Registry", registry.render],
  bans: ["Bans", bans.render],
  logs: ["Logs", logs.render],
  system: ["System", system.render],
};
const GROUPS = [
  ["Overview", ["dashboard"]],
  ["Resources", ["domains", "agents", "peers", "gateways", "numbers", "users"]],
  ["Live", ["location", "calls", "registry", "bans", "logs"]],
  ["Server", ["system"]],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const userBox = document.getElementById("user");
const banner = document.getElementById("connection");
let cleanup = () => {};

function route() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return ROUTES[name] ? name : "dashboard";
}

function show(event) {
  cleanup();
  if (!session.token()) return showLogin();
  const name = route();
  const [title, render] = ROUTES[name];
  document.body.classList.remove("signed-out");
  document.title = `${title} · routr console`;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  fill(userBox, h("span", { class: "muted" }, session.user() || ""), " ",
    h("button", { type: "button", onclick: signOut }, "Sign out"));
  sampler.start();
  cleanup = render(main) || (() => {});
  // a new page: screen readers and the keyboard start at its heading, as after a load
  const heading = main.querySelector("h1");
  if (event && heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

function showLogin(notice) {
  cleanup();
  sampler.stop();
  document.body.classList.add("signed-out");
  document.title = "Sign in · routr console";
  userBox.replaceChildren();
  setBanner(null);
  cleanup = login.render(main, { notice, then: () => show() });
}

function signOut() {
  session.clear();
  showLogin("Signed out.");
}

// -- the connection banner: shown while any stream or request cannot reach the server --
let streamLost = null;
let requestLost = false;
let bannerTimer = 0;

function setBanner(text) {
  banner.hidden = !text;
  banner.textContent = text || "";
}

function paintBanner() {
  clearTimeout(bannerTimer);
  if (!session.token() || (!streamLost && !requestLost)) return setBanner(null);
  let text = "Connection to the server lost";
  if (streamLost) {
    const seconds = Math.max(0, Math.ceil((streamLost.retryAt - Date.now()) / 1000));
    text += ` (${streamLost.reason}); reconnecting${seconds ? ` in ${seconds} s` : ""}…`;
    bannerTimer = setTimeout(paintBanner, 1000);
  } else {
    text += "; retrying…";
  }
  setBanner(text);
}

streamStatus.addEventListener("change", (e) => {
  streamLost = e.detail.state === "lost" ? e.detail : null;
  paintBanner();
});
onReachable((ok) => {
  if (requestLost !== !ok) {
    requestLost = !ok;
    paintBanner();
  }
});
onUnauthorized((reason) => showLogin(`Signed out: ${reason}.`));

fill(nav, GROUPS.map(([group, names]) => h("div", { class: "nav-group" },
  h("h2", {}, group),
  h("ul", {}, names.map((n) => h("li", {}, h("a", { href: `#/${n}`, "data-route": n }, ROUTES[n][0])))))));
window.addEventListener("hashchange", show);
resumeSession();
show();
