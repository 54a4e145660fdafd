/* The spawner's own pieces (before clone()): see main.c. */
#ifndef CONFINE_SPAWNER_H
#define CONFINE_SPAWNER_H

/* Serves one spawn request from `sock`: 1 when served (successfully or not, the reply says),
 * 0 when the server closed the socket, -1 on a receive error. */
int cs_serve_one(int sock);

#endif
