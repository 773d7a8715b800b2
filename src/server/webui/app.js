// The chat page of forge serve: talks to this server's /v1/models and /v1/chat/completions
// (SSE) and keeps the conversation and settings in localStorage.
//
// Safety: everything the user or the model writes is text. Markdown is rendered by building
// DOM nodes (createElement, textContent); no string of theirs ever reaches innerHTML,
// outerHTML, insertAdjacentHTML, document.write or an attribute other than a link's href,
// which must be an absolute http, https or mailto URL. The server's Content-Security-Policy
// forbids inline script on top of that.
'use strict';

(() => {
  const STORE = 'forge.chat.v1';
  const KEY_STORE = 'forge.apiKey';
  const MAX_DEPTH = 8; // nesting of Markdown blocks and inline spans rendered as such

  const $ = (id) => document.getElementById(id);
  const ui = {
    messages: $('messages'), input: $('input'), send: $('send'), stop: $('stop'), composer: $('composer'),
    model: $('model'), newChat: $('new-chat'), system: $('system'), temperature: $('temperature'),
    maxTokens: $('max-tokens'), notice: $('notice'), keyDialog: $('key-dialog'), keyForm: $('key-form'),
    keyInput: $('api-key'), keyCancel: $('key-cancel'), setKey: $('set-key'), keyState: $('key-state'),
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // ---- state, kept in localStorage --------------------------------------------------------

  const str = (v, d) => (typeof v === 'string' ? v : d);

  function load() {
    let s = null;
    try {
      s = JSON.parse(localStorage.getItem(STORE) || 'null');
    } catch (_) {
      s = null;
    }
    if (!s || typeof s !== 'object') s = {};
    const msgs = Array.isArray(s.messages) ? s.messages : [];
    return {
      system: str(s.system, ''),
      temperature: str(s.temperature, '0.7'),
      maxTokens: str(s.maxTokens, ''),
      messages: msgs
        .filter((m) => m && (m.role === 'user' || m.role === 'assistant'))
        .map((m) => ({
          role: m.role,
          content: str(m.content, ''),
          reasoning: str(m.reasoning, ''),
          model: str(m.model, ''),
          state: m.state === 'streaming' ? 'stopped' : str(m.state, 'done'), // a reload ends a stream
          error: str(m.error, ''),
          stats: m.stats && typeof m.stats === 'object' ? m.stats : null,
        })),
    };
  }

  const state = load();
  let model = null; // the served model's name, from /v1/models
  let busy = null;  // the answer being streamed: {ctl, msg}

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(state));
    } catch (e) {
      showNotice('The conversation could not be saved in this browser: ' + e.message);
    }
  }

  function apiKey() {
    try {
      return localStorage.getItem(KEY_STORE) || '';
    } catch (_) {
      return '';
    }
  }

  function headers(json) {
    const h = {};
    if (json) h['Content-Type'] = 'application/json';
    const k = apiKey();
    if (k) h.Authorization = 'Bearer ' + k;
    return h;
  }

  function showNotice(text) {
    ui.notice.textContent = text || '';
    ui.notice.hidden = !text;
  }

  // ---- Markdown to DOM ---------------------------------------------------------------------

  // Inline spans: code, strong, emphasis, strikethrough, links, bare URLs, line breaks. A span
  // stays within one line, and no pattern nests quantifiers: matching is at worst quadratic in
  // a line's length, never exponential (an answer is rendered again as it grows).
  const INLINE = new RegExp([
    '(`+)([^`\\n]|[^`\\n][^\\n]*?[^`\\n])\\1(?!`)',                  // 1,2 code
    '\\*\\*(?=[^\\s*])([^\\n]*?[^\\s*])\\*\\*',                       // 3 strong
    '(?<![\\w_])__(?=[^\\s_])([^\\n]*?[^\\s_])__(?![\\w_])',          // 4 strong
    '\\*(?=[^\\s*])([^*\\n]*?[^\\s*])\\*(?!\\*)',                     // 5 emphasis
    '(?<![\\w_])_(?=[^\\s_])([^\\n]*?[^\\s_])_(?![\\w_])',            // 6 emphasis
    '~~(?=\\S)([^\\n]*?\\S)~~',                                       // 7 strikethrough
    '\\[([^\\[\\]\\n]+)\\]\\(\\s*<?([^\\s()<>]+)>?(?:\\s+"[^"\\n]*")?\\s*\\)', // 8,9 link
    '(https?:\\/\\/[^\\s<>"`]*[^\\s<>"`.,;:!?\'()\\[\\]*_~])',        // 10 bare URL
    '(\\n)',                                                          // 11 line break
  ].join('|'), 'g');
  const MAX_INLINE = 50000; // longer paragraphs are shown as plain text

  function safeUrl(u) {
    if (!/^(https?:\/\/|mailto:)/i.test(u)) return null;
    try {
      const url = new URL(u);
      return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(href, parent) {
    const a = el('a');
    a.href = href;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    parent.append(a);
    return a;
  }

  function inline(text, parent, depth, inLink) {
    if (depth > MAX_DEPTH || text.length > MAX_INLINE) {
      parent.append(text);
      return;
    }
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.append(text.slice(last, m.index));
      last = m.index + m[0].length;
      if (m[1] !== undefined) {
        let code = m[2];
        if (code.length > 2 && code[0] === ' ' && code[code.length - 1] === ' ') code = code.slice(1, -1);
        parent.append(el('code', null, code.replace(/\n/g, ' ')));
      } else if (m[3] !== undefined || m[4] !== undefined) {
        inline(m[3] ?? m[4], parent.appendChild(el('strong')), depth + 1, inLink);
      } else if (m[5] !== undefined || m[6] !== undefined) {
        inline(m[5] ?? m[6], parent.appendChild(el('em')), depth + 1, inLink);
      } else if (m[7] !== undefined) {
        inline(m[7], parent.appendChild(el('del')), depth + 1, inLink);
      } else if (m[8] !== undefined) {
        const href = inLink ? null : safeUrl(m[9]);
        if (href) inline(m[8], link(href, parent), depth + 1, true);
        else parent.append(m[0]);
      } else if (m[10] !== undefined) {
        const href = inLink ? null : safeUrl(m[10]);
        if (href) link(href, parent).textContent = m[10];
        else parent.append(m[10]);
      } else {
        parent.append(el('br'));
      }
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  const RE_FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;
  const RE_HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
  const RE_HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  const RE_QUOTE = /^ {0,3}> ?/;
  const RE_ITEM = /^( {0,12})([-*+]|\d{1,9}[.)])(?:[ \t]+(.*)|$)/;
  const RE_TABLE_SEP = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

  const startsBlock = (line) =>
    RE_FENCE.test(line) || RE_HEADING.test(line) || RE_HR.test(line) || RE_QUOTE.test(line) || RE_ITEM.test(line);

  function tableCells(line) {
    let s = line.trim();
    if (s.startsWith('|')) s = s.slice(1);
    if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
    return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
  }

  // Renders Markdown source into parent as DOM nodes.
  function markdown(src, parent, depth = 0) {
    if (depth > MAX_DEPTH) {
      parent.append(el('p', null, src));
      return;
    }
    const lines = src.replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (/^\s*$/.test(line)) {
        i++;
      } else if ((m = RE_FENCE.exec(line))) {
        const fence = m[1];
        const indent = line.length - line.trimStart().length;
        const body = [];
        i++;
        while (i < lines.length && !(lines[i].trim().startsWith(fence) && lines[i].trim().replace(/[`~]/g, '') === '')) {
          body.push(lines[i].replace(new RegExp('^ {0,' + indent + '}'), ''));
          i++;
        }
        i++; // the closing fence (or the end of an answer still streaming)
        const pre = parent.appendChild(el('pre'));
        const code = pre.appendChild(el('code', null, body.join('\n')));
        if (m[2]) code.dataset.lang = m[2];
      } else if ((m = RE_HR.exec(line))) {
        parent.append(el('hr'));
        i++;
      } else if ((m = RE_HEADING.exec(line))) {
        inline(m[2] || '', parent.appendChild(el('h' + m[1].length)), depth + 1, false);
        i++;
      } else if (RE_QUOTE.test(line)) {
        const body = [];
        while (i < lines.length && RE_QUOTE.test(lines[i])) body.push(lines[i++].replace(RE_QUOTE, ''));
        markdown(body.join('\n'), parent.appendChild(el('blockquote')), depth + 1);
      } else if ((m = RE_ITEM.exec(line))) {
        i = list(lines, i, parent, depth);
      } else if (line.includes('|') && i + 1 < lines.length && RE_TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes('-')) {
        const table = parent.appendChild(el('table'));
        const head = table.appendChild(el('thead')).appendChild(el('tr'));
        for (const c of tableCells(line)) inline(c, head.appendChild(el('th')), depth + 1, false);
        const tbody = table.appendChild(el('tbody'));
        i += 2;
        while (i < lines.length && lines[i].includes('|') && !/^\s*$/.test(lines[i])) {
          const tr = tbody.appendChild(el('tr'));
          for (const c of tableCells(lines[i])) inline(c, tr.appendChild(el('td')), depth + 1, false);
          i++;
        }
      } else {
        const body = [line];
        i++;
        while (i < lines.length && !/^\s*$/.test(lines[i]) && !startsBlock(lines[i])) body.push(lines[i++]);
        inline(body.join('\n'), parent.appendChild(el('p')), depth + 1, false);
      }
    }
  }

  // A list starting at lines[i]: items of the same kind; an item's more-indented lines are its
  // own Markdown (nested lists, code). Returns the index after the list.
  function list(lines, i, parent, depth) {
    const first = RE_ITEM.exec(lines[i]);
    const ordered = /\d/.test(first[2]);
    const indent = first[1].length;
    const ul = parent.appendChild(el(ordered ? 'ol' : 'ul'));
    if (ordered) {
      const start = parseInt(first[2], 10);
      if (start !== 1) ul.start = start;
    }
    let loose = false;
    const items = [];
    while (i < lines.length) {
      const m = RE_ITEM.exec(lines[i]);
      if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
      const content = m[1].length + m[2].length + 1;
      const body = [m[3] || ''];
      i++;
      while (i < lines.length) {
        const l = lines[i];
        if (/^\s*$/.test(l)) {
          // a blank line continues the item when more of it (indented) follows
          let j = i + 1;
          while (j < lines.length && /^\s*$/.test(lines[j])) j++;
          if (j < lines.length && lines[j].length - lines[j].trimStart().length >= content) {
            loose = true;
            for (; i < j; i++) body.push('');
            continue;
          }
          const next = j < lines.length ? RE_ITEM.exec(lines[j]) : null;
          if (next && next[1].length === indent && /\d/.test(next[2]) === ordered) loose = true;
          i = j;
          break;
        }
        const ind = l.length - l.trimStart().length;
        const im = RE_ITEM.exec(l);
        if (im && im[1].length <= indent) break;
        if (ind < content && !im && startsBlock(l)) break;
        body.push(ind >= content ? l.slice(content) : l.trimStart());
        i++;
      }
      items.push(body.join('\n'));
    }
    for (const body of items) {
      const li = ul.appendChild(el('li'));
      const nested = body.includes('\n') || startsBlock(body);
      if (!loose && !nested) inline(body, li, depth + 1, false);
      else {
        markdown(body, li, depth + 1);
        // tight lists: an item's single paragraph is shown inline
        if (!loose && li.firstChild && li.firstChild.tagName === 'P') li.firstChild.replaceWith(...li.firstChild.childNodes);
      }
    }
    return i;
  }

  // ---- rendering messages --------------------------------------------------------------------

  // Reasoning: the server's reasoning_content, and text inside <think>...</think> at the start
  // of the answer (models whose reasoning is part of the text).
  function splitThink(m) {
    let reasoning = m.reasoning || '';
    let answer = m.content || '';
    const open = answer.match(/^\s*<think>/);
    if (open) {
      const rest = answer.slice(open[0].length);
      const end = rest.indexOf('</think>');
      reasoning += end < 0 ? rest : rest.slice(0, end);
      answer = end < 0 ? '' : rest.slice(end + 8).replace(/^\s+/, '');
    } else {
      const end = answer.indexOf('</think>');
      if (end >= 0 && !answer.slice(0, end).includes('<think>')) {
        reasoning += answer.slice(0, end);
        answer = answer.slice(end + 8).replace(/^\s+/, '');
      }
    }
    return {reasoning: reasoning.replace(/^\s+|\s+$/g, ''), answer};
  }

  function statsText(s) {
    if (!s) return '';
    const parts = [];
    if (typeof s.prompt === 'number') parts.push(s.prompt + ' prompt tokens');
    if (typeof s.completion === 'number') parts.push(s.completion + (s.completion === 1 ? ' token' : ' tokens'));
    if (typeof s.tps === 'number') parts.push(s.tps.toFixed(1) + ' tokens/s');
    if (typeof s.ttft === 'number') parts.push('first token ' + s.ttft.toFixed(2) + ' s');
    if (s.finish) parts.push(s.finish === 'length' ? 'stopped at max tokens' : s.finish === 'stopped' ? 'stopped' : '');
    return parts.filter(Boolean).join(' · ');
  }

  const nodes = new WeakMap(); // message -> its <article>

  function messageNode(m) {
    const art = el('article', 'msg');
    art.dataset.role = m.role;
    art.dataset.state = m.state || 'done';
    art.append(el('div', 'who', m.role === 'user' ? 'You' : m.model || 'Assistant'));
    const body = art.appendChild(el('div', 'body'));
    if (m.role === 'user') body.textContent = m.content;
    art.append(el('div', 'stats'));
    nodes.set(m, art);
    if (m.role === 'assistant') updateAssistant(m);
    return art;
  }

  function updateAssistant(m) {
    const art = nodes.get(m);
    if (!art) return;
    art.dataset.state = m.state || 'done';
    if (m.chunks != null) art.dataset.chunks = String(m.chunks);
    const body = art.querySelector('.body');
    const {reasoning, answer} = splitThink(m);
    let details = body.querySelector(':scope > details.reasoning');
    if (reasoning) {
      if (!details) {
        details = el('details', 'reasoning'); // folded unless the reader opens it
        details.append(el('summary'), el('div', 'text'));
        body.prepend(details);
      }
      details.firstChild.textContent = m.state === 'streaming' && !answer ? 'Reasoning…' : 'Reasoning';
      details.lastChild.textContent = reasoning;
    } else if (details) {
      details.remove();
    }
    let md = body.querySelector(':scope > .md');
    if (!md) md = body.appendChild(el('div', 'md'));
    const frag = document.createDocumentFragment();
    markdown(answer, frag);
    md.replaceChildren(frag);
    let err = body.querySelector(':scope > .error');
    if (m.error) {
      if (!err) err = body.appendChild(el('div', 'error'));
      err.textContent = m.error;
    } else if (err) {
      err.remove();
    }
    art.querySelector('.stats').textContent = statsText(m.stats);
  }

  function renderAll() {
    const shown = state.messages.map(messageNode);
    if (!shown.length) {
      const empty = el('div', 'empty');
      empty.append(el('h1', null, 'Chat with ' + (model || 'the model')),
        el('p', null, 'Answers stream from this server. The conversation stays in this browser.'));
      shown.push(empty);
    }
    ui.messages.replaceChildren(...shown);
    scrollDown(true);
  }

  function nearBottom() {
    const e = ui.messages;
    return e.scrollHeight - e.scrollTop - e.clientHeight < 80;
  }

  function scrollDown(force) {
    if (force || nearBottom()) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  const pending = new Set();
  const shownOnce = new WeakSet(); // messages whose first text is on screen
  let frame = 0;
  // Shows a streaming message's new text: the first text at once (the time to the first token
  // is what a reader notices), the rest once per animation frame.
  function scheduleUpdate(m) {
    if (!shownOnce.has(m) && (m.content || m.reasoning)) {
      shownOnce.add(m);
      updateAssistant(m);
      scrollDown(false);
      return;
    }
    pending.add(m);
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      const stick = nearBottom();
      for (const x of pending) updateAssistant(x);
      pending.clear();
      if (stick) scrollDown(true);
    });
  }

  // ---- the server ------------------------------------------------------------------------------

  async function errorMessage(res) {
    let text = '';
    try {
      text = await res.text();
      const j = JSON.parse(text);
      if (j && j.error && typeof j.error.message === 'string') return j.error.message + ' (HTTP ' + res.status + ')';
    } catch (_) { /* not JSON */ }
    return 'HTTP ' + res.status + (text ? ': ' + text.slice(0, 300) : '');
  }

  let modelTimer = 0;
  async function loadModel() {
    clearTimeout(modelTimer);
    try {
      const res = await fetch('/v1/models', {headers: headers(false), cache: 'no-store'});
      if (res.status === 401) {
        ui.model.textContent = 'API key needed';
        askKey();
        return;
      }
      if (res.status === 503) {
        ui.model.textContent = 'the model is loading…';
        modelTimer = setTimeout(loadModel, 1000);
        return;
      }
      if (!res.ok) throw new Error(await errorMessage(res));
      const j = await res.json();
      const id = j && Array.isArray(j.data) && j.data[0] && typeof j.data[0].id === 'string' ? j.data[0].id : null;
      if (!id) throw new Error('/v1/models listed no model');
      model = id;
      ui.model.textContent = id;
      document.title = id + ' · Forge chat';
      showNotice('');
      if (!state.messages.length) renderAll();
    } catch (e) {
      ui.model.textContent = 'not connected';
      showNotice('Cannot reach the server: ' + e.message + '. Retrying…');
      modelTimer = setTimeout(loadModel, 3000);
    }
  }

  // The data of each server-sent event of a response body.
  async function* sseEvents(body) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += dec.decode(value, {stream: true}).replace(/\r/g, '');
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(l[5] === ' ' ? 6 : 5));
          if (data.length) yield data.join('\n');
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  function settingsBody(messages) {
    const body = {model, messages, stream: true, stream_options: {include_usage: true}};
    const t = parseFloat(state.temperature);
    if (Number.isFinite(t) && t >= 0) body.temperature = t;
    const n = parseInt(state.maxTokens, 10);
    if (Number.isFinite(n) && n > 0) body.max_tokens = n;
    return body;
  }

  function conversation(upto) {
    const out = [];
    if (state.system.trim()) out.push({role: 'system', content: state.system});
    for (const m of state.messages) {
      if (m === upto) break;
      if (m.role === 'user') out.push({role: 'user', content: m.content});
      else if (m.content && m.state !== 'error') out.push({role: 'assistant', content: splitThink(m).answer});
    }
    return out;
  }

  async function send() {
    const text = ui.input.value;
    if (busy || !text.trim()) return;
    if (!model) {
      showNotice('Not connected to the model yet.');
      loadModel();
      return;
    }
    showNotice('');
    const user = {role: 'user', content: text, state: 'done'};
    const msg = {role: 'assistant', content: '', reasoning: '', model, state: 'streaming', error: '', stats: null, chunks: 0};
    state.messages.push(user, msg);
    ui.input.value = '';
    autosize();
    save();
    renderAll();
    const ctl = new AbortController();
    busy = {ctl, msg};
    setBusy(true);
    const t0 = performance.now();
    let tFirst = 0, tLast = 0, usage = null, finish = null, lastSave = t0;
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST', headers: headers(true), body: JSON.stringify(settingsBody(conversation(msg))),
        signal: ctl.signal, cache: 'no-store',
      });
      if (!res.ok) {
        const e = new Error(await errorMessage(res));
        e.status = res.status;
        throw e;
      }
      for await (const data of sseEvents(res.body)) {
        if (data === '[DONE]') break;
        let j;
        try {
          j = JSON.parse(data);
        } catch (_) {
          continue;
        }
        if (j && j.error) throw new Error(typeof j.error.message === 'string' ? j.error.message : 'the server reported an error');
        if (j && j.usage) usage = j.usage;
        const c = j && Array.isArray(j.choices) ? j.choices[0] : null;
        if (!c) continue;
        const d = c.delta || {};
        const now = performance.now();
        if (typeof d.content === 'string') msg.content += d.content;
        if (typeof d.reasoning_content === 'string') msg.reasoning += d.reasoning_content;
        else if (typeof d.reasoning === 'string') msg.reasoning += d.reasoning;
        if (c.finish_reason) finish = c.finish_reason;
        if (typeof d.content === 'string' || typeof d.reasoning_content === 'string' || typeof d.reasoning === 'string') {
          msg.chunks++;
          if (!tFirst) tFirst = now;
          tLast = now;
        }
        if (now - lastSave > 1000) {
          save();
          lastSave = now;
        }
        scheduleUpdate(msg);
      }
      msg.state = 'done';
    } catch (e) {
      if (ctl.signal.aborted) {
        msg.state = 'stopped';
      } else {
        msg.state = 'error';
        msg.error = e.message || String(e);
        if (e.status === 401) askKey();
      }
    }
    const completion = usage && typeof usage.completion_tokens === 'number' ? usage.completion_tokens : msg.chunks;
    msg.stats = {
      completion,
      finish: msg.state === 'stopped' ? 'stopped' : finish,
    };
    if (usage && typeof usage.prompt_tokens === 'number') msg.stats.prompt = usage.prompt_tokens;
    if (tFirst) msg.stats.ttft = (tFirst - t0) / 1000;
    if (completion > 1 && tLast > tFirst) msg.stats.tps = ((completion - 1) * 1000) / (tLast - tFirst);
    busy = null;
    setBusy(false);
    pending.delete(msg);
    updateAssistant(msg);
    scrollDown(false);
    save();
  }

  function stop() {
    if (busy) busy.ctl.abort();
  }

  function setBusy(on) {
    ui.send.hidden = on;
    ui.stop.hidden = !on;
    if (!on) ui.input.focus();
  }

  function newChat() {
    stop();
    state.messages = [];
    save();
    renderAll();
    ui.input.focus();
  }

  // ---- the API key -----------------------------------------------------------------------------

  function showKeyState() {
    ui.keyState.textContent = apiKey() ? 'An API key is stored in this browser.' : '';
  }

  function askKey() {
    if (ui.keyDialog.open) return;
    ui.keyInput.value = apiKey();
    ui.keyDialog.showModal();
    ui.keyInput.focus();
  }

  ui.keyForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const k = ui.keyInput.value.trim();
    try {
      if (k) localStorage.setItem(KEY_STORE, k);
      else localStorage.removeItem(KEY_STORE);
    } catch (e) {
      showNotice('The key could not be stored: ' + e.message);
    }
    ui.keyInput.value = '';
    ui.keyDialog.close();
    showKeyState();
    loadModel();
  });
  ui.keyCancel.addEventListener('click', () => ui.keyDialog.close());
  ui.setKey.addEventListener('click', askKey);

  // ---- the composer and settings ---------------------------------------------------------------

  function autosize() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, window.innerHeight * 0.4) + 'px';
  }

  ui.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send();
  });
  ui.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      send();
    }
  });
  ui.input.addEventListener('input', autosize);
  ui.stop.addEventListener('click', stop);
  ui.newChat.addEventListener('click', newChat);

  ui.system.value = state.system;
  ui.temperature.value = state.temperature;
  ui.maxTokens.value = state.maxTokens;
  for (const [field, key] of [[ui.system, 'system'], [ui.temperature, 'temperature'], [ui.maxTokens, 'maxTokens']]) {
    field.addEventListener('input', () => {
      state[key] = field.value;
      save();
    });
  }
  // another tab of this page changed the conversation: show it (unless this one is streaming)
  window.addEventListener('storage', (ev) => {
    if (ev.key !== STORE || busy) return;
    const s = load();
    Object.assign(state, s);
    ui.system.value = state.system;
    ui.temperature.value = state.temperature;
    ui.maxTokens.value = state.maxTokens;
    renderAll();
  });

  showKeyState();
  renderAll();
  loadModel();
  ui.input.focus();
})();
