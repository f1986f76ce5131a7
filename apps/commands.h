// The `attend` subcommands beyond the demo: vocab, train, translate, average. Each takes the
// arguments after its name and returns the process exit code; errors throw attend::Error.
#pragma once
#include <string>
#include <vector>

namespace attend::apps {

int cmd_vocab(const std::vector<std::string>& args);
int cmd_train(const std::vector<std::string>& args);
int cmd_translate(const std::vector<std::string>& args);
int cmd_average(const std::vector<std::string>& args);
int cmd_score(const std::vector<std::string>& args);

}  // namespace attend::apps
