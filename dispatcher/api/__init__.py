"""The admin service (`dispatcher admin`): the console's pages and the JSON API behind tokens,
answering from an SQLite index of the results and dead-letter topics."""
