"""One module per `analysisd` subcommand, each with `add_parser(subparsers)`."""
