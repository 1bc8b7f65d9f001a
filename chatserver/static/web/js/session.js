// Accounts: logging in and registering, the session's token and its expiry,
// logging out. The token lives in localStorage, so every tab of the browser
// shares the session (a chat's address pasted into a new tab opens the chat),
// and a log-in or log-out in one tab is followed by the others.

import { state, api, files } from "./state.js";
import { loadChats, resetChats } from "./chatlist.js";
import { startListSocket, stopListSocket } from "./listsocket.js";
import { closeConversation } from "./conversation.js";
import { clearUploads } from "./composer.js";
import { route } from "./router.js";
import { reportError } from "./notices.js";
import { $ } from "./dom.js";

const TOKEN_KEY = "chatserver.token";
const EXPIRED_TEXT = "Your session has expired. Please log in again.";

export const savedToken = () => localStorage.getItem(TOKEN_KEY);

function tokenExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.exp === "number" ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

function setSession(token) {
  api.token = token;
  localStorage.setItem(TOKEN_KEY, token);
  clearTimeout(state.expiryTimer);
  const expires = tokenExpiry(token);
  if (expires) {
    const wait = expires - Date.now();
    if (wait <= 0) return false;
    if (wait < 2 ** 31 - 1) state.expiryTimer = setTimeout(() => logout(EXPIRED_TEXT), wait);
  }
  return true;
}

// the token a single sign-on hands over in the address (/#access_token=...), taken out of it at once
export function takeSignInToken() {
  const fields = new URLSearchParams(location.hash.slice(1));
  const token = fields.get("access_token");
  if (!token) return null;
  history.replaceState(null, "", location.pathname + location.search);
  localStorage.setItem(TOKEN_KEY, token);
  return token;
}

function logout(message) {
  clearTimeout(state.expiryTimer);
  stopListSocket();
  closeConversation();
  clearUploads();
  // only the token this tab used: another tab may have logged in since
  if (savedToken() === api.token) localStorage.removeItem(TOKEN_KEY);
  api.token = null;
  state.user = null;
  history.replaceState(null, "", location.pathname + location.search); // the next user starts afresh
  resetChats();
  files.forgetAll();
  showAuth(message);
}

export function showAuth(message) {
  $("loading").hidden = true;
  $("app-view").hidden = true;
  $("auth-view").hidden = false;
  const box = $("auth-message");
  box.textContent = message || "";
  box.hidden = !message;
  selectTab("login");
  $("login-email").focus();
}

function selectTab(which) {
  const login = which === "login";
  $("tab-login").setAttribute("aria-selected", String(login));
  $("tab-register").setAttribute("aria-selected", String(!login));
  $("tab-login").tabIndex = login ? 0 : -1;
  $("tab-register").tabIndex = login ? -1 : 0;
  $("login-form").hidden = !login;
  $("register-form").hidden = login;
}

export function wireSession() {
  api.onUnauthorized = () => { if (state.user || api.token) logout(EXPIRED_TEXT); };
  $("tab-login").addEventListener("click", () => selectTab("login"));
  $("tab-register").addEventListener("click", () => selectTab("register"));
  for (const tab of [$("tab-login"), $("tab-register")]) {
    tab.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
        const next = tab.id === "tab-login" ? "register" : "login";
        selectTab(next);
        $(`tab-${next}`).focus();
      }
    });
  }
  const submit = (form, action) => form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = form.querySelector(".form-error");
    const button = form.querySelector("button[type=submit]");
    error.hidden = true;
    button.disabled = true;
    try {
      const answer = await action(new FormData(form));
      $("auth-message").hidden = true;
      form.reset();
      await startSession(answer.access_token, answer.user);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  submit($("login-form"), (data) => api.login(String(data.get("email")).trim(), String(data.get("password"))));
  submit($("register-form"), (data) => {
    const password = String(data.get("password"));
    if (password.length < 8) throw new Error("The password needs at least 8 characters.");
    return api.register(String(data.get("email")).trim(), password, String(data.get("display_name") || "").trim());
  });
  $("logout").addEventListener("click", () => {
    // the server revokes the token everywhere; the page forgets it whatever the answer
    if (api.token) api.logout().catch(() => {});
    logout("You have logged out.");
  });
  const signInWith = document.querySelector('meta[name="sign-in-with"]')?.content;
  if (signInWith) {
    $("oidc-login").textContent = `Sign in with ${signInWith}`;
    $("oidc-login").hidden = false;
  }
  window.addEventListener("storage", (ev) => {
    // key null: the storage was cleared
    if (ev.storageArea !== localStorage || (ev.key !== TOKEN_KEY && ev.key !== null)) return;
    const token = savedToken();
    if (token === api.token) return;
    if (state.user || api.token) logout(token ? null : "You have logged out in another tab.");
    if (token) startSession(token, null).catch((err) => reportError(err, "Could not log in"));
  });
}

export async function startSession(token, user) {
  if (!setSession(token)) { logout(EXPIRED_TEXT); return; }
  state.user = user || await api.me();
  $("user-name").textContent = state.user.display_name || state.user.email;
  $("user-name").title = state.user.email;
  $("open-admin").hidden = state.user.role !== "admin";
  $("loading").hidden = true;
  $("auth-view").hidden = true;
  $("app-view").hidden = false;
  resetChats();
  await loadChats();
  startListSocket();
  await route();
}
