/* fixture: only its name matters */
