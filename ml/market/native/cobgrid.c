/* cobgrid: the C order-book engine, built as one translation unit (see cobgrid.h). */
#include "cobgrid.h"

#include "book.c"
#include "frames.c"
#include "stream.c"
