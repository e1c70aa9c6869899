// xlagg web UI: the list of laggs with live state, an Add/Edit form with TrueNAS's fields,
// delete with confirmation. Every check is the daemon's: its messages are shown next to the
// field they name ("lagg0.laggproto: ...").
"use strict";

const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("xlagg-token") || "";
let editing = null; // name of the lagg being edited, null when adding

// A token in the address (#token=...) is taken and removed from the address bar.
(function tokenFromFragment() {
  const m = location.hash.match(/token=([0-9a-fA-F]+)/);
  if (m) {
    token = m[1];
    sessionStorage.setItem("xlagg-token", token);
    history.replaceState(null, "", location.pathname);
  }
})();

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data;
  try {
    data = await res.json();
  } catch (e) {
    data = { ok: false, errors: ["HTTP " + res.status] };
  }
  data.status = res.status;
  return data;
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

function portCell(ports) {
  const td = document.createElement("td");
  for (const p of ports) {
    const div = text("div", p.name + " ");
    div.appendChild(text("span", "<" + p.flags.join(",") + ">", "flags"));
    td.appendChild(div);
  }
  return td;
}

async function refresh() {
  const res = await api("GET", "/api/v1/laggs");
  const err = $("#list-error");
  if (!res.ok) {
    err.textContent = (res.errors || []).join("; ");
    err.hidden = false;
    return;
  }
  err.hidden = true;
  const body = $("#laggs tbody");
  body.replaceChildren();
  for (const l of res.data) {
    const tr = document.createElement("tr");
    tr.dataset.name = l.name;
    tr.appendChild(text("td", l.name, "name"));
    tr.appendChild(text("td", l.description));
    tr.appendChild(text("td", l.laggproto.toUpperCase()));
    tr.appendChild(portCell(l.ports));
    const obtained = (l.dynamic_addresses || []).map((a) => a + (a.includes(":") ? " (auto)" : " (DHCP)"));
    const dhcpNote = l.dhcp && l.dhcp !== "bound" ? ["DHCP: " + l.dhcp] : [];
    tr.appendChild(text("td", l.addresses.concat(obtained, dhcpNote).join(" ")));
    tr.appendChild(text("td", String(l.mtu)));
    tr.appendChild(text("td", l.state, "state " + l.state.replace(/ /g, "-")));
    const actions = document.createElement("td");
    const edit = text("button", "Edit", "edit");
    edit.onclick = () => openEditor(l.name);
    const del = text("button", "Delete", "delete danger");
    del.onclick = () => confirmDelete(l.name);
    actions.append(edit, del);
    tr.appendChild(actions);
    body.appendChild(tr);
  }
  $("#empty").hidden = res.data.length > 0;
}

function clearErrors() {
  for (const e of document.querySelectorAll(".field-error")) e.textContent = "";
  $("#form-error").hidden = true;
}

// "lagg0.laggproto: msg" or "lagg[2].name: msg" -> field "laggproto" / "name".
function showErrors(errors) {
  clearErrors();
  const general = [];
  for (const e of errors) {
    const m = e.match(/^[^.:\s]+\.([a-z_]+): (.*)$/);
    const slot = m && document.querySelector('.field-error[data-field="' + m[1] + '"]');
    if (slot) slot.textContent = m[2];
    else general.push(e);
  }
  if (general.length) {
    $("#form-error").textContent = general.join("\n");
    $("#form-error").hidden = false;
  }
}

function addAddressRow(value) {
  const row = document.createElement("div");
  row.className = "address";
  const input = document.createElement("input");
  input.placeholder = "192.168.1.10/24 or 2001:db8::10/64";
  input.value = value || "";
  const remove = text("button", "Remove");
  remove.type = "button";
  remove.onclick = () => row.remove();
  row.append(input, remove);
  $("#f-addresses").appendChild(row);
}

async function openEditor(name) {
  editing = name;
  clearErrors();
  $("#form-title").textContent = name ? "Edit Interface " + name : "Add Interface";
  $("#f-name").value = name || "";
  $("#f-name").disabled = !!name;
  let spec = { laggproto: "failover", laggports: [], description: "", mtu: 1500, addresses: [], hw_offload: true };
  if (name) {
    const dump = await api("GET", "/api/v1/dump");
    const found = dump.ok && dump.data.config.lagg.find((l) => l.name === name);
    if (found) spec = found;
  }
  $("#f-description").value = spec.description || "";
  $("#f-laggproto").value = spec.laggproto;
  $("#f-mtu").value = spec.mtu;
  $("#f-offload").checked = spec.hw_offload === false;
  $("#f-dhcp").checked = !!spec.dhcp;
  $("#f-ipv6auto").checked = !!spec.ipv6_auto;
  $("#f-options").value = "";
  $("#f-addresses").replaceChildren();
  for (const a of spec.addresses || []) addAddressRow(a);
  if (!(spec.addresses || []).length) addAddressRow("");
  const ifs = await api("GET", "/api/v1/interfaces");
  const ports = $("#f-ports");
  ports.replaceChildren();
  for (const i of ifs.ok ? ifs.data : []) {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = i.name;
    box.checked = spec.laggports.includes(i.name);
    const other = i.lagg && i.lagg !== name;
    box.disabled = !!other;
    label.append(box, " " + i.name + (i.up ? "" : " (down)") + (other ? " (in " + i.lagg + ")" : ""));
    ports.appendChild(label);
  }
  $("#editor").showModal();
}

async function save(ev) {
  ev.preventDefault();
  const name = editing || $("#f-name").value.trim();
  const spec = {
    name,
    description: $("#f-description").value,
    laggproto: $("#f-laggproto").value,
    laggports: [...document.querySelectorAll("#f-ports input:checked")].map((b) => b.value),
    mtu: Number($("#f-mtu").value),
    hw_offload: !$("#f-offload").checked,
    dhcp: $("#f-dhcp").checked,
    ...($("#f-dhcp").checked ? {} : { dhcp_sync: false }),
    ipv6_auto: $("#f-ipv6auto").checked,
    addresses: [...document.querySelectorAll("#f-addresses input")].map((i) => i.value.trim()).filter((v) => v),
    options: $("#f-options").value,
  };
  if (editing) {
    // Keep what the form does not show (LACP details, cores, ...).
    const dump = await api("GET", "/api/v1/dump");
    const old = dump.ok && dump.data.config.lagg.find((l) => l.name === editing);
    Object.assign(spec, Object.assign({}, old || {}, spec));
  }
  const res = editing
    ? await api("PUT", "/api/v1/laggs/" + encodeURIComponent(name), spec)
    : await api("POST", "/api/v1/laggs", spec);
  if (res.ok) {
    $("#editor").close();
    await refresh();
  } else if (res.status === 401) {
    showErrors(["Set the API token at the top of the page first: " + res.errors.join(" ")]);
  } else {
    showErrors(res.errors || ["HTTP " + res.status]);
  }
}

function confirmDelete(name) {
  $("#confirm-text").textContent = "Delete " + name + "? Its members are released and its interface removed.";
  const dialog = $("#confirm");
  dialog.onclose = async () => {
    if (dialog.returnValue !== "yes") return;
    const res = await api("DELETE", "/api/v1/laggs/" + encodeURIComponent(name));
    if (!res.ok) {
      $("#list-error").textContent = res.errors.join("; ");
      $("#list-error").hidden = false;
    }
    await refresh();
  };
  dialog.showModal();
}

async function checkToken() {
  if (!token) {
    $("#auth-state").textContent = "read-only: no token";
    return;
  }
  const res = await api("POST", "/api/v1/auth", {});
  $("#auth-state").textContent = res.ok ? "token accepted" : "token refused";
}

$("#auth").onsubmit = (ev) => {
  ev.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("xlagg-token", token);
  $("#token").value = "";
  checkToken();
};
$("#add").onclick = () => openEditor(null);
$("#cancel").onclick = () => $("#editor").close();
$("#add-address").onclick = () => addAddressRow("");
$("#lagg-form").onsubmit = save;

checkToken();
refresh();
setInterval(refresh, 1000);
