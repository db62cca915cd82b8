"""What views, commands and jobs share. Services never touch the request; they commit."""
