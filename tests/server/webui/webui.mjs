// Drives Debian's chromium headless (puppeteer-core: no browser download) against the chat
// page of a live forge serve (tests/server/webui.test.sh starts the servers):
//   BASE_URL  a server with the test chat template, served model name MODEL
//   KEY_URL   the same with --api-key API_KEY
//   SHOT_DIR  where the screenshots go (webui-light.png, webui-dark.png, webui-phone.png)
// Prints "ok NAME" / "FAIL NAME" lines and "N passed, N failed" last.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';

const BASE = process.env.BASE_URL;
const KEY_URL = process.env.KEY_URL;
const MODEL = process.env.MODEL;
const API_KEY = process.env.API_KEY;
const SHOT_DIR = process.env.SHOT_DIR;
const CHROME = process.env.CHROME || '/usr/bin/chromium';
const T = Number(process.env.WAIT_MS || 60000);

let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) {
    passed++;
    console.log('ok   ' + name);
  } else {
    failed++;
    console.log('FAIL ' + name + (detail !== undefined ? '\n    ' + String(detail).slice(0, 2000) : ''));
  }
}

async function api(base, path, body, key) {
  const h = {'Content-Type': 'application/json'};
  if (key) h.Authorization = 'Bearer ' + key;
  const r = await fetch(base + path, body ? {method: 'POST', headers: h, body: JSON.stringify(body)} : {headers: h});
  return r.headers.get('content-type')?.includes('json') ? r.json() : r.text();
}

async function metric(base, line) {
  const text = await api(base, '/metrics');
  for (const l of text.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return NaN;
}

// Everything a page does that the tests watch: console errors, page errors, requests.
function watch(page, origin) {
  const w = {errors: [], requests: [], foreign: [], chatHeaders: [], chatBodies: []};
  page.on('console', (m) => {
    if (m.type() === 'error') w.errors.push('console: ' + m.text());
  });
  page.on('pageerror', (e) => w.errors.push('pageerror: ' + e.message));
  page.on('request', (r) => {
    const u = r.url();
    w.requests.push(u);
    if (!(u.startsWith(origin + '/') || u.startsWith('data:') || u === 'about:blank')) w.foreign.push(u);
    if (u.endsWith('/v1/chat/completions')) {
      w.chatHeaders.push(r.headers());
      w.chatBodies.push(JSON.parse(r.postData() || 'null'));
    }
  });
  return w;
}

const messages = (page) =>
  page.$$eval('#messages [data-role]', (els) =>
    els.map((e) => ({role: e.dataset.role, state: e.dataset.state, text: e.querySelector('.body').textContent})));
const stored = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('forge.chat.v1') || '{}'));
const lastState = (page) =>
  page.$eval('#messages [data-role="assistant"]:last-of-type', (e) => e.dataset.state).catch(() => null);

async function waitAnswerEnd(page, n) {
  // the n-th assistant message (1-based) is no longer streaming
  await page.waitForFunction((n) => {
    const a = document.querySelectorAll('#messages [data-role="assistant"]');
    return a.length >= n && a[n - 1].dataset.state !== 'streaming';
  }, {timeout: T}, n);
}

async function sendText(page, text) {
  await page.focus('#input');
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (i) {
      await page.keyboard.down('Shift');
      await page.keyboard.press('Enter');
      await page.keyboard.up('Shift');
    }
    await page.keyboard.type(lines[i]);
  }
  await page.keyboard.press('Enter');
}

async function setField(page, sel, value) {
  await page.$eval('details#settings', (d) => { d.open = true; });
  await page.click(sel, {clickCount: 3});
  await page.$eval(sel, (e) => { e.value = ''; });
  if (value !== '') await page.type(sel, value);
  else await page.$eval(sel, (e) => e.dispatchEvent(new Event('input')));
}

// Elements the page's Markdown renderer may create inside a message body.
const ALLOWED = new Set(['P', 'BR', 'STRONG', 'EM', 'DEL', 'CODE', 'PRE', 'A', 'UL', 'OL', 'LI', 'BLOCKQUOTE', 'H1',
  'H2', 'H3', 'H4', 'H5', 'H6', 'HR', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'DIV', 'DETAILS', 'SUMMARY']);
const foreignElements = (page) =>
  page.$$eval('#messages .body *', (els, allowed) => els.map((e) => e.tagName).filter((t) => !allowed.includes(t)),
    [...ALLOWED]);

const browser = await puppeteer.launch({
  executablePath: CHROME,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-features=Translate,OptimizationHints,MediaRouter'],
});
try {
  const origin = new URL(BASE).origin;
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({width: 1100, height: 760});
  const w = watch(page, origin);

  // ---- the page loads, from this server only ------------------------------------------------
  const res = await page.goto(BASE + '/', {waitUntil: 'load', timeout: T});
  const hd = res.headers();
  check('GET / is 200 text/html', res.status() === 200 && /^text\/html/.test(hd['content-type']), hd['content-type']);
  check('the page has a Content-Security-Policy without inline script',
    /default-src 'self'/.test(hd['content-security-policy'] || '') && /script-src 'self'/.test(hd['content-security-policy']) &&
    !/unsafe-inline|unsafe-eval/.test(hd['content-security-policy']), hd['content-security-policy']);
  check('X-Content-Type-Options: nosniff', hd['x-content-type-options'] === 'nosniff');
  await page.waitForFunction((m) => document.getElementById('model').textContent === m, {timeout: T}, MODEL);
  check('the model name comes from /v1/models', w.requests.some((u) => u.endsWith('/v1/models')));
  check('the page loads its script, style and icon from this server',
    ['/webui/app.js', '/webui/app.css', '/webui/icon.svg'].every((p) => w.requests.includes(origin + p)), w.requests);

  // ---- Shift+Enter adds a line; Enter sends; the answer streams --------------------------------
  await setField(page, '#temperature', '0');
  await setField(page, '#max-tokens', '48');
  await page.focus('#input');
  await page.keyboard.type('Tell me a story');
  await page.keyboard.down('Shift');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Shift');
  await page.keyboard.type('about a cat');
  const draft = await page.$eval('#input', (e) => e.value);
  check('Shift+Enter adds a line and sends nothing', draft === 'Tell me a story\nabout a cat' &&
    (await messages(page)).length === 0, JSON.stringify(draft));
  // record what the assistant's text looked like while it streamed
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const a = document.querySelector('#messages [data-role="assistant"][data-state="streaming"] .md');
      if (a) window.__seen.push(a.textContent.length);
    }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true, attributes: true});
  });
  // the browser receives this answer slowly (DevTools network throttling: about 20 SSE
  // chunks a second), so that it shows partial text whatever the machine's load
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {offline: false, latency: 0, downloadThroughput: 5000,
    uploadThroughput: -1});
  await page.keyboard.press('Enter');
  await waitAnswerEnd(page, 1);
  await cdp.send('Network.emulateNetworkConditions', {offline: false, latency: 0, downloadThroughput: -1,
    uploadThroughput: -1});
  let msgs = await messages(page);
  check('Enter sends: a user and an assistant message (data-role)', msgs.length === 2 && msgs[0].role === 'user' &&
    msgs[1].role === 'assistant', JSON.stringify(msgs));
  check('the user message is shown as typed', msgs[0]?.text === 'Tell me a story\nabout a cat', msgs[0]?.text);
  check('the answer finished', msgs[1]?.state === 'done', JSON.stringify(msgs[1]));
  const seen = await page.evaluate(() => window.__seen);
  const chunks = Number(await page.$eval('#messages [data-role="assistant"]', (e) => e.dataset.chunks));
  const finalLen = (await page.$eval('#messages [data-role="assistant"] .md', (e) => e.textContent)).length;
  console.log(`    (streamed: ${chunks} chunks, ${new Set(seen).size} text lengths shown before the end)`);
  check('the answer was streamed: several SSE chunks, partial text shown before the end',
    chunks > 5 && seen.some((n) => n > 0 && n < finalLen), `chunks ${chunks}, lengths seen ${seen.slice(0, 20)} of ${finalLen}`);
  // the same request straight to the API (greedy): the page shows what the server generated
  const ref = await api(BASE, '/v1/chat/completions', {
    model: MODEL, temperature: 0, max_tokens: 48, messages: [{role: 'user', content: 'Tell me a story\nabout a cat'}],
  });
  const st = await stored(page);
  const want = ref.choices[0].message.content;
  check('the stored answer equals the API\'s greedy answer to the same request', st.messages?.[1]?.content === want,
    JSON.stringify({page: st.messages?.[1]?.content, api: want}));
  const norm = (s) => s.replace(/\s+/g, ' ').trim();
  const shownText = await page.$eval('#messages [data-role="assistant"] .md', (e) => e.innerText);
  check('the shown answer is that text', norm(shownText) === norm(want), JSON.stringify({shown: shownText, want}));
  const stats = await page.$eval('#messages [data-role="assistant"] .stats', (e) => e.textContent);
  check('token counts and tokens/s are shown after the answer',
    stats.includes(ref.usage.prompt_tokens + ' prompt tokens') && stats.includes(ref.usage.completion_tokens + ' tokens') &&
    /[0-9.]+ tokens\/s/.test(stats), stats + ' vs ' + JSON.stringify(ref.usage));

  // ---- stop cancels the stream; the server counts the abort ----------------------------------
  await setField(page, '#max-tokens', '');
  await setField(page, '#temperature', '0.8');
  await setField(page, '#system', 'You tell stories.');
  const abort0 = await metric(BASE, 'forge_request_success_total{finished_reason="abort"}');
  // Stop is clicked from inside the page as soon as the answer shows text. The model writes its
  // ~460 tokens in a few tenths of a second, so on a loaded machine the whole answer can arrive
  // before the click: that attempt then ends "done" (it tested nothing) and the scenario is run
  // again with the next message, at most 4 times. A Stop that does not stop fails every time.
  let last = null, sent = null, wantSent = null, attempts = 0;
  while (attempts < 4) {
    attempts++;
    const history = ((await stored(page)).messages || [])
      .filter((m) => m.role === 'user' || (m.content && m.state !== 'error'))
      .map((m) => ({role: m.role, content: m.content}));
    await page.evaluate(() => {
      if (window.__stopObs) window.__stopObs.disconnect();
      const obs = window.__stopObs = new MutationObserver(() => {
        const a = document.querySelector('#messages [data-role="assistant"][data-state="streaming"] .md');
        if (a && a.textContent.length > 0) {
          obs.disconnect();
          document.getElementById('stop').click();
        }
      });
      obs.observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
    });
    const n = history.filter((m) => m.role === 'assistant').length + 1;
    const stopVisible = page.waitForFunction(() => !document.getElementById('stop').hidden, {timeout: T});
    await sendText(page, 'Once upon a time');
    await stopVisible;
    await waitAnswerEnd(page, n);
    msgs = await messages(page);
    last = msgs[msgs.length - 1];
    sent = w.chatBodies[w.chatBodies.length - 1];
    wantSent = [{role: 'system', content: 'You tell stories.'}, ...history, {role: 'user', content: 'Once upon a time'}];
    if (last?.state !== 'done') break; // stopped (or an error, which the checks below report)
  }
  await page.evaluate(() => window.__stopObs && window.__stopObs.disconnect());
  check('stop ends the answer as stopped', last?.state === 'stopped' && last.text.length > 0,
    `attempt ${attempts}: ${JSON.stringify(last)}`);
  check('the request carries the system prompt, the history, the settings and the model name',
    JSON.stringify(sent.messages) === JSON.stringify(wantSent) &&
      JSON.stringify(wantSent.slice(1, 3)) === JSON.stringify([{role: 'user', content: 'Tell me a story\nabout a cat'},
        {role: 'assistant', content: want}]) && sent.temperature === 0.8 && !('max_tokens' in sent) &&
      sent.stream === true && sent.model === MODEL, JSON.stringify(sent));
  check('the send button is back after stop', await page.$eval('#send', (e) => !e.hidden) &&
    await page.$eval('#stop', (e) => e.hidden));
  let abort1 = NaN;
  for (let i = 0; i < 100; i++) {
    abort1 = await metric(BASE, 'forge_request_success_total{finished_reason="abort"}');
    if (abort1 > abort0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  check('the server counted the abort (forge_request_success_total{finished_reason="abort"})', abort1 === abort0 + 1,
    `${abort0} -> ${abort1}`);

  // ---- a reload keeps the conversation and the settings -------------------------------------
  const before = await messages(page);
  await page.reload({waitUntil: 'load'});
  await page.waitForFunction((m) => document.getElementById('model').textContent === m, {timeout: T}, MODEL);
  const after = await messages(page);
  check('a reload keeps the conversation', JSON.stringify(after) === JSON.stringify(before),
    JSON.stringify({before, after}));
  check('a reload keeps the settings', await page.$eval('#temperature', (e) => e.value) === '0.8');

  // ---- screenshots, light and dark, desktop and phone ----------------------------------------
  if (SHOT_DIR) {
    fs.mkdirSync(SHOT_DIR, {recursive: true});
    await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'light'}]);
    await page.screenshot({path: SHOT_DIR + '/webui-light.png'});
    await page.$eval('details#settings', (d) => { d.open = true; });
    await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'dark'}]);
    await page.screenshot({path: SHOT_DIR + '/webui-dark.png'});
    await page.$eval('details#settings', (d) => { d.open = false; });
    await page.setViewport({width: 390, height: 760, deviceScaleFactor: 1, isMobile: true, hasTouch: true});
    await page.screenshot({path: SHOT_DIR + '/webui-phone.png'});
    await page.setViewport({width: 1100, height: 760});
    await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'light'}]);
  }
  const bg = async (scheme) => {
    await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: scheme}]);
    return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  };
  const light = await bg('light'), dark = await bg('dark');
  check('light and dark follow the system setting', light === 'rgb(255, 255, 255)' && dark !== light, `${light} / ${dark}`);
  await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'light'}]);
  await page.setViewport({width: 360, height: 700, isMobile: true, hasTouch: true});
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth &&
    document.getElementById('send').getBoundingClientRect().right <= window.innerWidth);
  check('a phone-sized window shows the page without horizontal scrolling', fits);
  await page.setViewport({width: 1100, height: 760});

  // ---- markup typed by the user is text ----------------------------------------------------
  await page.click('#new-chat');
  check('new chat empties the conversation', (await messages(page)).length === 0 &&
    ((await stored(page)).messages || []).length === 0);
  await setField(page, '#max-tokens', '16');
  const evil = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold?</b> **md** [x](javascript:window.__xss=3)';
  await sendText(page, evil);
  await waitAnswerEnd(page, 1);
  msgs = await messages(page);
  check('the user\'s markup is shown as text', msgs[0]?.text === evil, msgs[0]?.text);
  check('the user\'s markup created no element',
    (await page.$$eval('#messages [data-role="user"] .body *', (e) => e.length)) === 0);
  check('nothing ran', await page.evaluate(() => window.__xss === undefined));

  // ---- markup generated by the model is text ------------------------------------------------
  // The page's request goes to the live server with logit_bias added: only '<', '>' and 'i' may
  // be sampled, at a high temperature, so the model writes tags such as "<i>".
  await page.click('#new-chat');
  let forced = null;
  await page.setRequestInterception(true);
  const onReq = (req) => {
    if (req.url().endsWith('/v1/chat/completions') && req.method() === 'POST') {
      const body = JSON.parse(req.postData());
      const bias = {};
      for (let i = 0; i < 512; i++) bias[i] = -100;
      bias[63] = 17; bias[65] = 17; bias[417] = 0; // '<' '>' (byte tokens) and 'i' of stories260K
      Object.assign(body, {logit_bias: bias, temperature: 2, seed: 1, max_tokens: 100});
      forced = body;
      req.continue({postData: JSON.stringify(body)});
    } else {
      req.continue();
    }
  };
  page.on('request', onReq);
  await sendText(page, 'Write some HTML');
  await waitAnswerEnd(page, 1);
  page.off('request', onReq);
  await page.setRequestInterception(false);
  const gen = (await stored(page)).messages?.[1]?.content || '';
  const directRes = forced ? await api(BASE, '/v1/chat/completions', {...forced, stream: false, stream_options: undefined}) : null;
  const direct = directRes?.choices?.[0]?.message?.content;
  if (direct === undefined) console.log('    direct: ' + JSON.stringify(directRes).slice(0, 500));
  check('the page\'s answer is the model\'s (the same request straight to the API)', gen === direct,
    JSON.stringify({gen, direct}));
  const count = (s, sub) => s.split(sub).length - 1;
  check('the model wrote tags ("<i>")', count(gen, '<i>') >= 1, JSON.stringify(gen));
  const shownGen = await page.$eval('#messages [data-role="assistant"] .md', (e) => e.textContent);
  check('the model\'s tags are shown as text', count(shownGen, '<i>') === count(gen, '<i>') &&
    count(shownGen, '<') === count(gen, '<'), JSON.stringify({shownGen, gen}));
  check('the model\'s tags created no element', (await foreignElements(page)).length === 0 &&
    (await page.$$eval('#messages i', (e) => e.length)) === 0, await foreignElements(page));

  // ---- Markdown, links, reasoning, and attacks in a model's answer (a scripted SSE answer) ----
  // The exact answer a model could write, served in place of the server's: the renderer must
  // build the Markdown and leave every tag, script and javascript: link as text.
  await page.click('#new-chat');
  const chunksOut = [
    {reasoning_content: 'Thinking about <b>tags</b>'}, {reasoning_content: ' and more.'},
    {content: '**Bold** and *em*, `a <code> span`, ~~gone~~.\n\n'},
    {content: '- one\n- two with [a link](https://example.com/x)\n\n1. first\n2. second\n\n'},
    {content: '```html\n<script>window.__xss=4</script>\n```\n\n'},
    {content: '<img src=x onerror="window.__xss=5"> <scr'}, {content: 'ipt>window.__xss=6</script>\n\n'},
    {content: '[bad](javascript:window.__xss=7) <a href="javascript:window.__xss=8">a</a> ' +
      '<iframe src="https://example.com"></iframe>\n\n> a quote\n\n| a | b |\n|---|---|\n| 1 | 2 |'},
  ];
  const sse = chunksOut.map((d, i) => 'data: ' + JSON.stringify({
    id: 'x', object: 'chat.completion.chunk', created: 0, model: MODEL,
    choices: [{index: 0, delta: i ? d : {role: 'assistant', ...d}, finish_reason: null}],
  }) + '\n\n').join('') + 'data: ' + JSON.stringify({
    id: 'x', object: 'chat.completion.chunk', created: 0, model: MODEL,
    choices: [{index: 0, delta: {}, finish_reason: 'stop'}],
  }) + '\n\ndata: ' + JSON.stringify({id: 'x', object: 'chat.completion.chunk', created: 0, model: MODEL, choices: [],
    usage: {prompt_tokens: 5, completion_tokens: 60, total_tokens: 65}}) + '\n\ndata: [DONE]\n\n';
  await page.setRequestInterception(true);
  const think = ['<thi', 'nk>Plan: say <b>hi</b>.', '</think>', '\n\nHello *there*.'].map((c) => 'data: ' +
    JSON.stringify({choices: [{index: 0, delta: {content: c}, finish_reason: null}]}) + '\n\n').join('') + 'data: [DONE]\n\n';
  // text that makes backtracking regular expressions take exponential time, in 200 chunks
  const nasty = '*a' + '**x'.repeat(1500) + '\n\n*' + 'a**'.repeat(1500) + '\n\n' + '_a '.repeat(2000) + '\n\n' +
    '`'.repeat(3000) + 'a\n\n' + '- - '.repeat(1000) + 'x\n\n' + '| -'.repeat(1000) + '\n' + '[a]('.repeat(1000) +
    '\n\n' + '>'.repeat(100) + ' deep\n\n' + '  - '.repeat(100) + 'nested\n';
  const parts = [];
  for (let i = 0; i < nasty.length; i += Math.ceil(nasty.length / 200)) parts.push(nasty.slice(i, i + Math.ceil(nasty.length / 200)));
  const slow = parts.map((c) => 'data: ' + JSON.stringify({choices: [{index: 0, delta: {content: c}, finish_reason: null}]}) +
    '\n\n').join('') + 'data: [DONE]\n\n';
  let mocks = 0;
  const onMock = (req) => {
    if (req.url().endsWith('/v1/chat/completions') && req.method() === 'POST') {
      req.respond({status: 200, contentType: 'text/event-stream', body: [sse, think, slow][mocks++]});
    } else {
      req.continue();
    }
  };
  page.on('request', onMock);
  await sendText(page, 'Show me Markdown');
  await waitAnswerEnd(page, 1);
  page.off('request', onMock);
  await page.setRequestInterception(false);
  const md = await page.$eval('#messages [data-role="assistant"] .body', (b) => {
    const q = (s) => [...b.querySelectorAll(s)];
    return {
      strong: q('.md strong').map((e) => e.textContent), em: q('.md em').map((e) => e.textContent),
      del: q('.md del').map((e) => e.textContent), code: q('.md p code').map((e) => e.textContent),
      ul: q('.md ul > li').map((e) => e.textContent), ol: q('.md ol > li').map((e) => e.textContent),
      pre: q('.md pre code').map((e) => e.textContent),
      links: q('a').map((e) => ({href: e.getAttribute('href'), rel: e.rel, text: e.textContent})),
      quote: q('.md blockquote').map((e) => e.textContent.trim()), cells: q('.md td').map((e) => e.textContent),
      details: q('details.reasoning').map((e) => ({open: e.open, text: e.querySelector('.text').textContent})),
      text: b.querySelector('.md').textContent,
    };
  });
  check('Markdown: emphasis, code spans, strikethrough', JSON.stringify([md.strong, md.em, md.code, md.del]) ===
    JSON.stringify([['Bold'], ['em'], ['a <code> span'], ['gone']]), JSON.stringify(md));
  check('Markdown: lists, code blocks, quotes, tables', JSON.stringify([md.ul, md.ol, md.pre, md.quote, md.cells]) ===
    JSON.stringify([['one', 'two with a link'], ['first', 'second'], ['<script>window.__xss=4</script>'], ['a quote'],
      ['1', '2']]), JSON.stringify(md));
  check('links open with rel=noopener; javascript: links stay text',
    md.links.some((l) => l.href === 'https://example.com/x' && l.text === 'a link') &&
    md.links.every((l) => /^https:\/\//.test(l.href) && /noopener/.test(l.rel)) &&
    md.text.includes('[bad](javascript:window.__xss=7)'), JSON.stringify(md.links));
  check('the answer\'s tags are text', md.text.includes('<img src=x onerror="window.__xss=5"> <script>window.__xss=6</script>') &&
    md.text.includes('<a href="javascript:window.__xss=8">a</a> <iframe src="https://example.com"></iframe>'), md.text);
  check('reasoning_content is shown folded, as text', md.details.length === 1 && md.details[0].open === false &&
    md.details[0].text === 'Thinking about <b>tags</b> and more.', JSON.stringify(md.details));
  check('the answer created no element beyond the Markdown ones', (await foreignElements(page)).length === 0,
    await foreignElements(page));
  page.on('request', onMock);
  await page.setRequestInterception(true);
  await sendText(page, 'Think first');
  await waitAnswerEnd(page, 2);
  page.off('request', onMock);
  await page.setRequestInterception(false);
  const th = await page.$eval('#messages [data-role="assistant"]:nth-of-type(4) .body', (b) => ({
    details: [...b.querySelectorAll('details.reasoning')].map((d) => ({open: d.open, text: d.querySelector('.text').textContent})),
    md: b.querySelector('.md').textContent, em: [...b.querySelectorAll('.md em')].map((e) => e.textContent),
  }));
  page.on('request', onMock);
  await page.setRequestInterception(true);
  const tNasty = Date.now();
  await sendText(page, 'Be nasty');
  await waitAnswerEnd(page, 3);
  const nastyMs = Date.now() - tNasty;
  page.off('request', onMock);
  await page.setRequestInterception(false);
  const nastyShown = await page.$eval('#messages [data-role="assistant"]:last-of-type', (e) =>
    ({state: e.dataset.state, len: e.querySelector('.md').textContent.length}));
  check('pathological Markdown (unclosed emphasis, backticks, deep quotes and lists) renders quickly',
    nastyShown.state === 'done' && nastyShown.len > 10000 && nastyMs < 10000, JSON.stringify({nastyMs, ...nastyShown}));
  console.log('    (pathological answer: ' + nastyMs + ' ms)');
  check('<think>...</think> at the start of an answer is folded as reasoning', JSON.stringify(th) ===
    JSON.stringify({details: [{open: false, text: 'Plan: say <b>hi</b>.'}], md: 'Hello there.', em: ['there']}),
    JSON.stringify(th));
  await new Promise((r) => setTimeout(r, 300));
  check('no script ran', await page.evaluate(() => window.__xss === undefined));
  check('the page never requested another host', w.foreign.length === 0, w.foreign);
  check('no console errors on the page', w.errors.length === 0, w.errors.join('\n'));
  await ctx.close();

  // ---- --api-key: the page asks for the key and sends it as a Bearer header -------------------
  if (KEY_URL) {
    const kctx = await browser.createBrowserContext();
    const kp = await kctx.newPage();
    const kw = watch(kp, new URL(KEY_URL).origin);
    await kp.goto(KEY_URL + '/', {waitUntil: 'load', timeout: T});
    await kp.waitForSelector('#key-dialog[open]', {timeout: T});
    check('--api-key: the page asks for the key', true);
    await kp.type('#api-key', API_KEY);
    await kp.click('#key-save');
    await kp.waitForFunction((m) => document.getElementById('model').textContent === m, {timeout: T}, MODEL);
    check('--api-key: the key is stored in the browser', await kp.evaluate(() => localStorage.getItem('forge.apiKey')) === API_KEY);
    await setField(kp, '#max-tokens', '8');
    await sendText(kp, 'Hello');
    await waitAnswerEnd(kp, 1);
    const km = await messages(kp);
    check('--api-key: the answer comes', km[1]?.state === 'done' && km[1].text.length > 0, JSON.stringify(km));
    check('--api-key: the chat request carries Authorization: Bearer KEY',
      kw.chatHeaders.length === 1 && kw.chatHeaders[0].authorization === 'Bearer ' + API_KEY,
      JSON.stringify(kw.chatHeaders));
    check('--api-key: no request to another host', kw.foreign.length === 0, kw.foreign);
    // an error answer is shown in the message
    await setField(kp, '#max-tokens', '100000');
    await sendText(kp, 'Too long');
    await waitAnswerEnd(kp, 2);
    const ke = await kp.$eval('#messages [data-role="assistant"]:last-of-type', (e) =>
      ({state: e.dataset.state, error: e.querySelector('.error')?.textContent}));
    check('an error answer (400: max tokens past the context) is shown in the message',
      ke.state === 'error' && /context/.test(ke.error) && /HTTP 400/.test(ke.error), JSON.stringify(ke));
    // the errors expected: the first /v1/models without a key (401), the 400
    const unexpected = kw.errors.filter((e) => !/status of (401|400)/.test(e));
    check('--api-key: no console errors besides the first 401 and the 400', unexpected.length === 0,
      unexpected.join('\n'));
    await kctx.close();
  }
} catch (e) {
  check('the browser test ran to its end', false, e && e.stack);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
