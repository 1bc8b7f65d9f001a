"""Tools models may call while they answer (docs/tools.md): the one
interface and the running of a call (toolbox), the built-in tools over the
user's own data (builtin_tools), MCP servers' tools (mcp_servers, with
MCP_SERVERS read by mcp_config, which config.py uses), and the sources a
process holds, made once per app (tool_sources).

May import `data`, `db`, `config`, `errors`, `metrics` and `appkeys`, never
`api`, `ai` or `live`: the generation job calls tools, tools know nothing of
answers.
"""
