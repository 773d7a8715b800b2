#!/usr/bin/env bash
# forge chat driven through tmux (send-keys, capture-pane): two turns with the stories260K
# model and a simple template, the answers streamed, history kept (the second answer equals
# a greedy completion of the two-turn rendering), /reset, Ctrl-D leaves.
source "$(dirname "$0")/../lib.sh"
command -v tmux >/dev/null || { echo "FAIL tmux missing (scripts/install-deps.sh installs it)"; echo "0 passed, 1 failed"; exit 1; }
M=tests/fixtures/stories260K
TPL=tests/fixtures/templates/simple-chat.jinja
ARGS="--model $M --chat-template $TPL --max-tokens 12 --temperature 0"
S=forge-chat-test-$$
export TMUX_TMPDIR=$T_TMP
tmux new-session -d -s $S -x 200 -y 50 -c "$PWD" "$FORGE chat $ARGS 2>$T_TMP/err; echo EXITED=\$? >$T_TMP/exit"
trap 'tmux kill-server 2>/dev/null; rm -rf "$T_TMP"' EXIT

# waits (bounded) until the pane shows `count` prompts "> " at line starts
wait_prompts() {
  for _ in $(seq 1 400); do
    [ "$(tmux capture-pane -p -t $S | grep -c '^>')" -ge "$1" ] && return 0
    tmux has-session -t $S 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
check "first prompt shown" wait_prompts 1
tmux send-keys -t $S "Hello there" Enter
check "first answer, second prompt" wait_prompts 2
tmux send-keys -t $S "Tell me a story" Enter
check "second answer, third prompt" wait_prompts 3
pane=$(tmux capture-pane -p -t $S)
a1=$(echo "$pane" | awk '/^> Hello there/{getline; print; exit}')
a2=$(echo "$pane" | awk '/^> Tell me a story/{getline; print; exit}')
check "first answer streamed" test -n "$a1"
check "second answer streamed" test -n "$a2"
# the same turns through forge template + generate without special tokens give the same text
want1=$(printf 'User: Hello there\nAssistant:' | "$FORGE" generate --model $M --prompt-file - --max-tokens 12 --temperature 0 --no-special 2>/dev/null)
check_eq "first answer equals the greedy completion" "$a1" "$want1"
want2=$(printf 'User: Hello there\nAssistant: %s\nUser: Tell me a story\nAssistant:' "$want1" | \
  "$FORGE" generate --model $M --prompt-file - --max-tokens 12 --temperature 0 --no-special 2>/dev/null)
check_eq "second answer continues the history" "$a2" "$want2"
tmux send-keys -t $S "/reset" Enter
check "reset acknowledged" sh -c "for i in \$(seq 1 200); do tmux capture-pane -p -t $S | grep -q 'history cleared' && exit 0; sleep 0.05; done; exit 1"
tmux send-keys -t $S C-d
for _ in $(seq 1 200); do [ -f "$T_TMP/exit" ] && break; sleep 0.05; done
check_eq "Ctrl-D leaves cleanly" "$(cat "$T_TMP/exit" 2>/dev/null)" "EXITED=0"
finish
