/* commands.h: the forge subcommands; each returns the process exit status. */
#ifndef FORGE_CLI_COMMANDS_H
#define FORGE_CLI_COMMANDS_H

int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_embed(int argc, char **argv);

#endif
